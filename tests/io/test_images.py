"""io.images: the official pixel conversions, grids and atomic PNGs."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.io.images import from_uint8, grid_layout, hwc_uint8, images_to_uint8, save_image_grid, to_uint8


def test_official_pixel_conversions():
    # x * 127.5 + 128, clamped and truncated: -1 -> 0.5 -> 0, 0 -> 128, 1 -> 255.5 -> 255, 0.999 -> 255.37 -> 255
    x = torch.tensor([-1.0, -1.5, 0.0, 1.0, 2.0, 0.999, -0.996])
    assert to_uint8(x).dtype == torch.uint8
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255, 255, 1]
    # x / 127.5 - 1 on every byte value, in float32
    u = torch.arange(256, dtype=torch.uint8)
    expected = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1)
    assert from_uint8(u).dtype == torch.float32 and np.array_equal(from_uint8(u).numpy(), expected)
    assert to_uint8(from_uint8(u)).tolist() == list(range(256))  # round trip: each byte maps back to itself
    img = torch.tensor([[[-1.0, 1.0]], [[0.0, 0.0]], [[1.0, -1.0]]])  # [C=3, H=1, W=2]
    arr = hwc_uint8(img)
    assert arr.shape == (1, 2, 3) and arr.dtype == np.uint8 and arr.tolist() == [[[0, 128, 255], [255, 128, 0]]]


def test_images_to_uint8():
    x = torch.tensor([-1.0, 1.0, 0.0, -2.0, 3.0, -1 + 2 * 0.6 / 255, -1 + 2 * 0.4 / 255]).view(1, 1, 1, 7)
    out = images_to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == (1, 1, 7, 1)
    assert out[0, 0, :, 0].tolist() == [0, 255, 128, 0, 255, 1, 0]
    rgb = images_to_uint8(torch.full([2, 3, 4, 5], 0.5), drange=(0, 1))
    assert rgb.shape == (2, 4, 5, 3) and (rgb == 128).all()


def test_save_image_grid(tmp_path):
    imgs = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 3, 4, 5)
    save_image_grid(imgs, tmp_path / "g.png", grid=(3, 2))
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "RGB" and im.size == (15, 8)
        arr = np.asarray(im)
    assert arr[0, 0, 0] == 0 and arr[4, 10, 0] == 255  # first cell top-left, last cell bottom-right
    assert arr[0, 5, 0] == images_to_uint8(imgs[1:2])[0, 0, 0, 0]  # row-major order
    save_image_grid(imgs[:5, :1], tmp_path / "l.png", grid=(3, 2))
    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "L" and im.size == (15, 8)
        assert np.asarray(im)[4:, 10:].max() == 0  # empty cell
    with pytest.raises(ValueError):
        save_image_grid(imgs, tmp_path / "x.png", grid=(2, 2))
    with pytest.raises(ValueError):
        save_image_grid(torch.zeros(1, 2, 4, 4), tmp_path / "x.png", grid=(1, 1))


@pytest.mark.parametrize("n", [1, 2, 7, 16, 32, 64, 100])
def test_grid_layout(n):
    cols, rows = grid_layout(n)
    assert cols * rows >= n and (cols - 1) * rows < n and cols * (rows - 1) < n
    assert cols >= rows


def test_grid_layout_shapes():
    assert grid_layout(1) == (1, 1)
    assert grid_layout(32) == (8, 4)
    assert grid_layout(16, aspect=1) == (4, 4)
    assert grid_layout(3, aspect=1 / 3) == (1, 3)


def test_grid_layout_invalid():
    with pytest.raises(ValueError):
        grid_layout(0)

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.models.stylegan2 import Generator
from stylegan.training.presets import network_preset
from stylegan.training.report import class_grid, plot_curves, truncation_sweep


def _generator(c_dim: int) -> Generator:
    torch.manual_seed(0)
    g, _ = network_preset("sg2-32", img_channels=1, c_dim=c_dim)
    return Generator(g).eval()


@pytest.fixture(scope="module")
def g_cond():
    return _generator(10)


@pytest.fixture(scope="module")
def g_uncond():
    return _generator(0)


def test_plot_curves(tmp_path):
    stats = [
        {"kimg": 0.0, "Loss/G": 1.0, "Loss/D": {"mean": 2.0, "std": 0.1, "num": 4}},
        {"kimg": 4.0, "Loss/G": float("nan")},
        {"kimg": 8.0, "Loss/G": 0.5, "Loss/D": {"mean": 1.5}, "fid": 40.0},
        {"Loss/G": 9.0},  # no x: skipped
        {"kimg": 12.0, "Loss/G": float("inf"), "fid": 30.0},
    ]
    plot_curves(stats, tmp_path / "c.png", ["Loss/G", "Loss/D", "fid", "missing"], title="run")
    with Image.open(tmp_path / "c.png") as im:
        assert im.mode == "RGB" and im.size[0] > 100
        h = im.size[1]
        arr = np.asarray(im)
    heights = []
    for keys in (["fid"], ["fid", "Loss/G"]):
        plot_curves(stats, tmp_path / "k.png", keys)
        with Image.open(tmp_path / "k.png") as im:
            heights.append(im.size[1])
    panel = heights[1] - heights[0]  # one panel per key, stacked
    assert panel > 0 and h > heights[0] + 3 * panel  # plus the title
    assert (arr != 255).any() and (arr == 255).any()
    with pytest.raises(ValueError):
        plot_curves(stats, tmp_path / "none.png", ["missing"])
    with pytest.raises(ValueError):
        plot_curves([{"kimg": 1, "x": float("nan")}], tmp_path / "none.png", ["x"])
    assert not (tmp_path / "none.png").exists()


def test_class_grid(tmp_path, g_cond, g_uncond):
    class_grid(g_cond, tmp_path / "c.png", per_class=3, seed=1)
    with Image.open(tmp_path / "c.png") as im:
        assert im.mode == "L" and im.size == (3 * 32, 10 * 32)
        plain = np.asarray(im)
    names = [f"class {i}" for i in range(10)]
    class_grid(g_cond, tmp_path / "n.png", per_class=3, seed=1, class_names=names)
    with Image.open(tmp_path / "n.png") as im:
        margin = im.size[0] - 3 * 32
        assert margin > 0 and im.size[1] == 10 * 32
        named = np.asarray(im)
    np.testing.assert_array_equal(named[:, margin:], plain)  # same seed, same samples
    assert (named[:, :margin] < 128).any()  # text drawn in the white margin
    with pytest.raises(ValueError):
        class_grid(g_cond, tmp_path / "bad.png", class_names=["a"])
    class_grid(g_uncond, tmp_path / "u.png", per_class=2)
    with Image.open(tmp_path / "u.png") as im:
        assert im.size == (64, 64)


def test_truncation_sweep_uncond(tmp_path, g_uncond):
    psis = (1.0, 0.5, 0.0)
    truncation_sweep(g_uncond, tmp_path / "t.png", psis=psis, num_seeds=3)
    with Image.open(tmp_path / "t.png") as im:
        assert im.mode == "L" and im.size[0] == 3 * 32
        arr = np.asarray(im)
    top = arr.shape[0] - 3 * 32
    assert top > 0 and (arr[:top] < 128).any()  # psi labels
    cells = arr[top:].reshape(3, 32, 3, 32).transpose(0, 2, 1, 3)  # [row, col, H, W]
    for r in range(1, 3):
        np.testing.assert_array_equal(cells[r, 2], cells[0, 2])  # psi=0: every row is w_avg
    assert not np.array_equal(cells[1, 0], cells[0, 0])
    with pytest.raises(ValueError):
        truncation_sweep(g_uncond, tmp_path / "x.png", class_idx=0)


def test_truncation_sweep_cond(tmp_path, g_cond):
    truncation_sweep(g_cond, tmp_path / "t.png", psis=(1.0, 0.0), num_seeds=2, class_idx=4)
    with Image.open(tmp_path / "t.png") as im:
        assert im.size[0] == 2 * 32
    truncation_sweep(g_cond, tmp_path / "r.png", psis=(1.0,), num_seeds=2)
    with pytest.raises(ValueError):
        truncation_sweep(g_cond, tmp_path / "x.png", class_idx=10)

"""Images between the networks and files: pixel conversions, grids and PNG writing.

Generators output float images in about [-1, 1]. NVIDIA's tools turn them into 8-bit pixels as
x * 127.5 + 128, clamped and truncated (`to_uint8`), StyleGAN-XL's image tools as (x + 1) * 255 / 2, clamped and
truncated (`to_uint8_xl`: half a level lower, so about half the pixels come out one level darker), and feed 8-bit
pixels to the networks as x / 127.5 - 1 (`from_uint8`). Grids of training runs and figures map a float range onto [0, 255] with
rounding instead (`images_to_uint8`). PNGs and .npy files are written atomically, so a viewer never sees a
half-written file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..models import stylegan_xl
from ..models.common import Generator
from .checkpoint import atomic_write_bytes


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Float pixels in [-1, 1] -> uint8 (x * 127.5 + 128, clamped, truncated), any layout."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8_xl(img: torch.Tensor) -> torch.Tensor:
    """Float pixels in [-1, 1] -> uint8 as StyleGAN-XL's gen_utils.w_to_img ((x + 1) * 255 / 2, clamped, truncated), any layout."""
    return ((img + 1) * 255 / 2).clamp(0, 255).to(torch.uint8)


def to_uint8_for(G: Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The conversion of the official image tools of `G`'s family (gen_images.py): `to_uint8_xl` for StyleGAN-XL
    generators, `to_uint8` for the others."""
    return to_uint8_xl if isinstance(G, stylegan_xl.Generator) else to_uint8


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1), any layout."""
    return x.to(torch.float32) / 127.5 - 1


def hwc_uint8(img: torch.Tensor, convert: Callable[[torch.Tensor], torch.Tensor] = to_uint8) -> np.ndarray:
    """One [C, H, W] float image in [-1, 1] -> an HWC uint8 array by `convert`, as the official tools write image files."""
    return convert(img.permute(1, 2, 0)).cpu().numpy()


def images_to_uint8(images: torch.Tensor, drange: tuple[float, float] = (-1, 1)) -> np.ndarray:
    """[N, C, H, W] floats spanning `drange` -> [N, H, W, C] uint8, rounded and clipped."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape [N, C, H, W], got {list(images.shape)}")
    lo, hi = drange
    x = (images.detach().to(torch.float32).cpu() - lo) * (255 / (hi - lo))
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def grid_layout(n: int, aspect: float = 16 / 9) -> tuple[int, int]:
    """(cols, rows) for `n` square images, the grid's shape near `aspect` (width / height) with few empty cells."""
    if n < 1:
        raise ValueError(f"need at least one image, got {n}")
    cols = min(n, math.ceil(math.sqrt(n * aspect)))
    rows = math.ceil(n / cols)
    return math.ceil(n / rows), rows


def grid_image(images: torch.Tensor, grid: tuple[int, int], drange: tuple[float, float] = (-1, 1)) -> Image.Image:
    """[N, C, H, W] images (1 or 3 channels) tiled row by row into a `grid` = (cols, rows) image; empty cells are black."""
    cols, rows = grid
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {c}")
    if n > cols * rows:
        raise ValueError(f"{n} images do not fit a {cols}x{rows} grid")
    cells = np.zeros([cols * rows, h, w, c], np.uint8)
    cells[:n] = images_to_uint8(images, drange)
    arr = cells.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    return Image.fromarray(arr[:, :, 0] if c == 1 else arr, "L" if c == 1 else "RGB")


def save_png(img: Image.Image, path: str | os.PathLike) -> None:
    """Write `img` as a PNG, atomically."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write `array` as a .npy file, atomically."""
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, grid: tuple[int, int],
                    drange: tuple[float, float] = (-1, 1)) -> None:
    """Tile [N, C, H, W] images row by row into a `grid` = (cols, rows) PNG (grayscale or RGB)."""
    save_png(grid_image(images, grid, drange), path)


def labelled(img: Image.Image, cell: int, *, rows: list[str] | None = None, cols: list[str] | None = None) -> Image.Image:
    """`img`, a grid of `cell`-pixel squares, with white margins: one label per row on the left, one per column
    on top. Column labels wider than a cell keep only what follows '=' ('psi=0.5' -> '0.5')."""
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(img)
    pad = 6
    if cols and max(probe.textlength(s, font=font) for s in cols) > cell - 4:
        cols = [s.split("=", 1)[-1] for s in cols]
    left = int(max(probe.textlength(s, font=font) for s in rows)) + 2 * pad if rows else 0
    top = 20 if cols else 0
    out = Image.new(img.mode, (img.width + left, img.height + top), "white")
    out.paste(img, (left, top))
    draw = ImageDraw.Draw(out)
    black = 0 if img.mode == "L" else (0, 0, 0)
    for i, s in enumerate(rows or []):
        draw.text((pad, top + i * cell + cell / 2), s, fill=black, font=font, anchor="lm")
    for j, s in enumerate(cols or []):
        draw.text((left + j * cell + cell / 2, top / 2), s, fill=black, font=font, anchor="mm")
    return out

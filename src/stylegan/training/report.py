"""Images and plots for training runs: sample grids, truncation sweeps, curves of training statistics, and which
images the reals/fakes grids show.

Everything is drawn with Pillow and written as PNG atomically (`io.images`), so a viewer never sees a half-written file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sized, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..io.images import grid_image, labelled, save_png
from ..models.common import Generator

_GEN_BATCH = 16


# ----------------------------------------------------------------------------- curves

_PLOT_W, _PANEL_H = 720, 200
_LEFT, _RIGHT, _HEAD, _FOOT = 72, 16, 22, 22
_LINE, _GRID, _AXIS, _TEXT = (31, 119, 180), (225, 225, 225), (90, 90, 90), (0, 0, 0)


def _scalar(value: Any) -> float | None:
    """A finite number from a stats entry: a plain number or a `{"mean": ...}` statistic."""
    if isinstance(value, dict):
        value = value.get("mean")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def _ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round-numbered tick positions (multiples of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    step = 10 ** math.floor(math.log10((hi - lo) / target))
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= target)
    eps = 1e-9 * step
    return [k * step for k in range(math.ceil((lo - eps) / step), math.floor((hi + eps) / step) + 1)]


def _draw_panel(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, top: int, key: str,
                points: list[tuple[float, float]]) -> None:
    x0, x1 = _LEFT, _PLOT_W - _RIGHT
    y0, y1 = top + _HEAD, top + _PANEL_H - _FOOT
    draw.text((x0, top + 5), key, fill=_TEXT, font=font)
    if not points:
        draw.rectangle([x0, y0, x1, y1], outline=_AXIS)
        draw.text(((x0 + x1) // 2 - 20, (y0 + y1) // 2), "no data", fill=_AXIS, font=font)
        return
    ys = [p[1] for p in points]
    summary = f"min {_fmt(min(ys))}   max {_fmt(max(ys))}   last {_fmt(ys[-1])}"
    draw.text((x1 - draw.textlength(summary, font=font), top + 5), summary, fill=_TEXT, font=font)
    xlo, xhi = _span([p[0] for p in points])
    ylo, yhi = _span(ys)

    def px(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0), y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

    for x in _ticks(xlo, xhi):
        gx = px(x, ylo)[0]
        draw.line([gx, y0, gx, y1], fill=_GRID)
        draw.text((gx - draw.textlength(_fmt(x), font=font) / 2, y1 + 5), _fmt(x), fill=_TEXT, font=font)
    for y in _ticks(ylo, yhi):
        gy = px(xlo, y)[1]
        draw.line([x0, gy, x1, gy], fill=_GRID)
        draw.text((x0 - 6 - draw.textlength(_fmt(y), font=font), gy - 6), _fmt(y), fill=_TEXT, font=font)
    draw.rectangle([x0, y0, x1, y1], outline=_AXIS)
    coords = [px(x, y) for x, y in points]
    if len(coords) > 1:
        draw.line(coords, fill=_LINE, width=2)
    for cx, cy in coords if len(coords) <= 50 else coords[-1:]:
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=_LINE)


def plot_curves(stats: list[dict], path: str | os.PathLike, keys: list[str], x_key: str = "kimg",
                title: str = "") -> None:
    """Plot `keys` of per-tick `stats` dicts against `x_key`, one panel per key, as a PNG.

    Values are numbers or `{"mean": ...}` statistics (the stats.jsonl shape); ticks where the key or `x_key`
    is missing or not finite are skipped. Raises ValueError when no key has anything to plot.
    """
    series: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
    for tick in stats:
        x = _scalar(tick.get(x_key))
        if x is None:
            continue
        for key in keys:
            y = _scalar(tick.get(key))
            if y is not None:
                series[key].append((x, y))
    if not any(series.values()):
        raise ValueError(f"nothing to plot: no finite values of {', '.join(keys) or 'no keys'} against {x_key!r}")
    font = ImageFont.load_default()
    title_h = 24 if title else 0
    img = Image.new("RGB", (_PLOT_W, title_h + _PANEL_H * len(keys) + 14), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text(((_PLOT_W - draw.textlength(title, font=font)) / 2, 6), title, fill=_TEXT, font=font)
    for i, key in enumerate(keys):
        _draw_panel(draw, font, title_h + i * _PANEL_H, key, series[key])
    draw.text((_PLOT_W - _RIGHT - draw.textlength(x_key, font=font), img.height - 16), x_key, fill=_AXIS, font=font)
    save_png(img, path)


# ----------------------------------------------------------------------------- generator samples

def _generate(G: Generator, z: torch.Tensor, c: torch.Tensor, psi: float, device: torch.device | str) -> torch.Tensor:
    out = [G(zb.to(device), cb.to(device), truncation_psi=psi, noise_mode="const").cpu()
           for zb, cb in zip(z.split(_GEN_BATCH), c.split(_GEN_BATCH))]
    return torch.cat(out)


@torch.no_grad()
def class_grid(G: Generator, path: str | os.PathLike, *, per_class: int = 8, seed: int = 0,
               truncation_psi: float = 1.0, device: torch.device | str = "cpu",
               class_names: list[str] | None = None) -> None:
    """A PNG of samples: one row of `per_class` images per class for a conditional G, else a square block.

    Latents come from a `torch.Generator` seeded with `seed`, so the grid is the same on every call.
    `class_names` (conditional G only, one per class) are written in a white margin left of the rows.
    """
    rows = G.c_dim if G.c_dim > 0 else per_class
    if class_names is not None and (G.c_dim == 0 or len(class_names) != G.c_dim):
        raise ValueError(f"class_names needs one name per class of a conditional generator "
                         f"(c_dim={G.c_dim}, got {len(class_names)} names)")
    n = rows * per_class
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    c = torch.zeros([n, G.c_dim])
    if G.c_dim > 0:
        c[torch.arange(n), torch.arange(G.c_dim).repeat_interleave(per_class)] = 1
    img = grid_image(_generate(G, z, c, truncation_psi, device), (per_class, rows), (-1, 1))
    if class_names is not None:
        img = labelled(img, G.img_resolution, rows=class_names)
    save_png(img, path)


@torch.no_grad()
def truncation_sweep(G: Generator, path: str | os.PathLike, *,
                     psis: Sequence[float] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0), num_seeds: int = 6, seed: int = 0,
                     device: torch.device | str = "cpu", class_idx: int | None = None) -> None:
    """A PNG with one row per latent and one column per truncation psi (labelled on top).

    A conditional G uses class `class_idx` for every row, or a seeded random class per row when it is None.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([num_seeds, G.z_dim], generator=gen)
    c = torch.zeros([num_seeds, G.c_dim])
    if G.c_dim > 0:
        if class_idx is not None and not 0 <= class_idx < G.c_dim:
            raise ValueError(f"class_idx={class_idx} out of range for c_dim={G.c_dim}")
        idx = torch.randint(G.c_dim, [num_seeds], generator=gen) if class_idx is None else class_idx
        c[torch.arange(num_seeds), idx] = 1
    elif class_idx is not None:
        raise ValueError("class_idx needs a conditional generator")
    columns = torch.stack([_generate(G, z, c, psi, device) for psi in psis], dim=1)  # [seeds, psis, C, H, W]
    img = grid_image(columns.flatten(0, 1), (len(psis), num_seeds), (-1, 1))
    save_png(labelled(img, G.img_resolution, cols=[f"psi={p:g}" for p in psis]), path)


# ----------------------------------------------------------------------------- training grids


def grid_size(res: int) -> tuple[int, int]:
    """(columns, rows) of a training run's reals/fakes grids at resolution `res` (NVIDIA's)."""
    return int(np.clip(1920 // res, 4, 16)), int(np.clip(1080 // res, 4, 16))


def grid_indices(dataset: Sized, labels: torch.Tensor | None, gw: int, gh: int, seed: int) -> list[int]:
    """gw x gh dataset indices; with labels, each row shows one class (classes cycle over the rows)."""
    rnd = np.random.RandomState(seed)
    if labels is None or labels.shape[1] == 0:
        return rnd.choice(len(dataset), size=gw * gh, replace=len(dataset) < gw * gh).tolist()
    classes = labels.argmax(dim=1).numpy()
    present = np.unique(classes)
    out: list[int] = []
    for row in range(gh):
        pool = np.flatnonzero(classes == present[row % len(present)])
        out += rnd.choice(pool, size=gw, replace=len(pool) < gw).tolist()
    return out

"""Resolution usage of skip generators (StyleGAN2 §4.2, Figure 8): how much each tRGB contributes to the image.

In a skip generator the image is a sum of per-resolution terms, img = Σ_r U_r(tRGB_r), where U_r is the chain of
FIR 2x upsamplings (`upsample2d` with the block's resample filter) that lifts block r's tRGB output to the final
resolution. The contribution of resolution r is σ_r, the standard deviation of U_r(tRGB_r) over samples, colour
channels and pixels together; the figure shows σ_r / Σ σ in percent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..io.load import load_network
from ..io.runs import snapshot_kimg, snapshots
from ..models import stylegan2
from ..models.common import Generator
from ..ops import upsample2d
from .common import plt, sample_ws, save_figure, save_json

NUM_SAMPLES = 1024  # "1024 random w" of the paper
_BATCH = 32


@dataclass
class ResolutionUsage:
    """σ_r of every resolution's upsampled tRGB output and its share in percent (summing to 100)."""

    resolutions: list[int]
    std: list[float]
    percent: list[float]
    num_samples: int
    seed: int
    kimg: float | None = None


@dataclass
class ResolutionUsageRun:
    """`ResolutionUsage` of every snapshot of a training run, oldest first."""

    kimg: list[float]
    snapshots: list[str]
    usage: list[ResolutionUsage]


def skip_blocks(G: Generator) -> list[stylegan2.SynthesisBlock]:
    """The synthesis blocks of a skip-architecture StyleGAN2 generator; ValueError for any other generator."""
    syn = getattr(G, "synthesis", None)
    if not isinstance(syn, stylegan2.SynthesisNetwork):
        raise ValueError(f"resolution usage needs a skip-architecture StyleGAN2 generator; this is a "
                         f"{type(G).__module__.rsplit('.', 1)[-1]} {type(G).__name__} (StyleGAN3 has no per-resolution tRGB)")
    blocks = [getattr(syn, f"b{res}") for res in syn.block_resolutions]
    if any(b.architecture != "skip" for b in blocks):
        raise ValueError(f"resolution usage needs a skip-architecture StyleGAN2 generator; this one is "
                         f"{blocks[0].architecture!r} (only 'skip' sums per-resolution tRGB outputs)")
    return blocks


@torch.no_grad()
def resolution_usage(G: Generator, num_samples: int = NUM_SAMPLES, seed: int = 0, device: torch.device | str = "cpu",
                     noise_mode: str = "const", progress: bool = True) -> ResolutionUsage:
    """σ_r of U_r(tRGB_r) over `num_samples` random w (z from `seed`), accumulated in float64 (StyleGAN2 Fig. 8)."""
    if num_samples < 2:
        raise ValueError(f"resolution usage needs at least 2 samples, got {num_samples}")
    blocks = skip_blocks(G)
    device = torch.device(device)
    outputs: dict[int, torch.Tensor] = {}
    hooks = [b.torgb.register_forward_hook(lambda m, i, o, r=b.resolution: outputs.__setitem__(r, o)) for b in blocks]
    moments = torch.zeros([len(blocks), 3], dtype=torch.float64)  # count, sum, sum of squares
    rng = torch.Generator().manual_seed(seed)
    try:
        for start in tqdm(range(0, num_samples, _BATCH), desc="resolution usage", unit="batch", disable=None if progress else True):
            ws = sample_ws(G, min(_BATCH, num_samples - start), rng, device)
            img = G.synthesis(ws, noise_mode=noise_mode, force_fp32=True)
            total = torch.zeros_like(img)
            for i, block in enumerate(blocks):
                y = outputs[block.resolution].to(torch.float32)
                for later in blocks[i + 1:]:
                    y = upsample2d(y, later.resample_filter)
                assert y.shape == img.shape, (list(y.shape), list(img.shape))
                total += y
                y = y.double()
                moments[i] += torch.stack([torch.tensor(float(y.numel()), dtype=torch.float64), y.sum().cpu(), y.square().sum().cpu()])
            err = float((total - img).abs().max())
            assert err <= 1e-3 * (1 + float(img.abs().max())), f"per-resolution terms miss the image by {err:g}"
    finally:
        for h in hooks:
            h.remove()
    n, s, ss = moments.unbind(1)
    std = ((ss - s * s / n) / (n - 1)).clamp(min=0).sqrt().numpy()
    percent = 100 * std / std.sum()
    return ResolutionUsage([b.resolution for b in blocks], std.tolist(), percent.tolist(), num_samples, seed)


def resolution_usage_run(run_dir: str | os.PathLike, num_samples: int = NUM_SAMPLES, seed: int = 0,
                         device: torch.device | str = "cpu", noise_mode: str = "const") -> ResolutionUsageRun:
    """`resolution_usage` of every `network-snapshot-*.safetensors` of a training run (same z for all)."""
    paths = snapshots(Path(run_dir))
    if not paths:
        raise ValueError(f"{run_dir}: holds no network-snapshot-*.safetensors files")
    usage = []
    for path in tqdm(paths, desc="snapshots", unit="snapshot", disable=None):
        u = resolution_usage(load_network(path, device=device).generator, num_samples, seed, device, noise_mode, progress=False)
        u.kimg = snapshot_kimg(path)
        usage.append(u)
    return ResolutionUsageRun([u.kimg for u in usage], [p.name for p in paths], usage)


def plot_usage(usage: ResolutionUsage, path: str | os.PathLike) -> None:
    """Bar chart of the per-resolution shares of one network."""
    fig, ax = plt.subplots(figsize=(6, 3.6), tight_layout=True)
    labels = [f"{r}²" for r in usage.resolutions]
    ax.bar(labels, usage.percent, color=plt.cm.viridis(np.linspace(0, 1, len(labels))))
    for i, p in enumerate(usage.percent):
        ax.text(i, p, f"{p:.1f}%", ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("tRGB resolution")
    ax.set_ylabel("relative std of contribution (%)")
    ax.set_title(f"Resolution usage ({usage.num_samples} samples)")
    save_figure(fig, path)


def plot_usage_run(run: ResolutionUsageRun, path: str | os.PathLike) -> None:
    """Stacked area chart of the shares over training (kimg), as StyleGAN2 Figure 8."""
    fig, ax = plt.subplots(figsize=(7, 4), tight_layout=True)
    resolutions = run.usage[0].resolutions
    shares = np.array([u.percent for u in run.usage]).T  # [resolutions, snapshots]
    ax.stackplot(run.kimg, shares, labels=[f"{r}²" for r in resolutions],
                 colors=plt.cm.viridis(np.linspace(0, 1, len(resolutions))))
    ax.set_xlim(min(run.kimg), max(run.kimg) if len(run.kimg) > 1 else min(run.kimg) + 1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("training progress (kimg)")
    ax.set_ylabel("contribution (%)")
    ax.set_title("Resolution usage over training")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    save_figure(fig, path)


def write_usage(usage: ResolutionUsage | ResolutionUsageRun, outdir: str | os.PathLike) -> tuple[Path, Path]:
    """resolution-usage.{png,json} in `outdir`."""
    outdir = Path(outdir)
    png, js = outdir / "resolution-usage.png", outdir / "resolution-usage.json"
    (plot_usage_run if isinstance(usage, ResolutionUsageRun) else plot_usage)(usage, png)
    save_json(usage, js)
    return png, js

"""Per-layer feature-map statistics that reveal "droplets" (StyleGAN2 §2, Figure 1).

StyleGAN's AdaIN layers learn to form a strong localised spike in the feature maps; demodulation removes it.
For a feature map x [C, H, W] of one sample, each channel is first divided by its RMS over the positions
(channel-normalised, so no single loud channel dominates), then M(p) = mean_c |x_c(p)| / rms_c is its magnitude
at position p, and the peak-to-mean ratio is max_p M(p) / mean_p M(p): 1 for a flat magnitude, about
sqrt(H W / k) for a spike covering k of the H W positions. Each layer reports the ratio averaged over samples and
its maximum, and the mean, std and max of the raw activations over samples, channels and positions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..models import stylegan1, stylegan2, stylegan3
from ..models.common import Generator
from .common import plt, sample_ws, save_figure, save_json

# Modules whose outputs are synthesis feature maps; a new family adds its layer class here.
FEATURE_LAYERS: tuple[type[torch.nn.Module], ...] = (stylegan1.StyleLayer, stylegan2.SynthesisLayer, stylegan3.SynthesisLayer)
NUM_SAMPLES = 64
_BATCH = 16
_EPS = 1e-8


@dataclass
class LayerStats:
    """Droplet statistics of one synthesis layer."""

    name: str
    channels: int
    resolution: int
    peak_to_mean: float  # mean over samples
    peak_to_mean_max: float  # worst sample
    mean: float
    std: float
    max: float  # max |activation|


@dataclass
class DropletStats:
    num_samples: int
    seed: int
    layers: list[LayerStats]


def magnitude_map(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, H, W]: mean over channels of |x_c(p)| / rms_c (rms over the positions of each channel)."""
    assert x.ndim == 4, f"feature map must be [N, C, H, W], got {list(x.shape)}"
    x = x.to(torch.float32)
    rms = x.square().mean(dim=[2, 3], keepdim=True).sqrt()
    return (x.abs() / (rms + _EPS)).mean(dim=1)


def peak_to_mean(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N]: max_p M(p) / mean_p M(p) of each sample's `magnitude_map`."""
    m = magnitude_map(x).flatten(1)
    return m.amax(dim=1) / (m.mean(dim=1) + _EPS)


def feature_layers(G: Generator) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of the synthesis layers whose outputs are feature maps (instances of FEATURE_LAYERS, no ToRGB)."""
    layers = [(name, m) for name, m in G.synthesis.named_modules()
              if isinstance(m, FEATURE_LAYERS) and not getattr(m, "is_torgb", False)]
    if not layers:
        raise ValueError(f"{type(G.synthesis).__module__}.{type(G.synthesis).__name__} has no layer of a known feature-layer "
                         f"class ({', '.join(c.__module__ + '.' + c.__name__ for c in FEATURE_LAYERS)})")
    return layers


@torch.no_grad()
def droplet_stats(G: Generator, num_samples: int = NUM_SAMPLES, seed: int = 0, device: torch.device | str = "cpu",
                  noise_mode: str = "const") -> tuple[DropletStats, dict[str, torch.Tensor]]:
    """Per-layer droplet statistics over `num_samples` random w, and the magnitude maps M of the first sample."""
    if num_samples < 1:
        raise ValueError(f"need at least 1 sample, got {num_samples}")
    layers = feature_layers(G)
    device = torch.device(device)
    acc = {name: {"ratio": [], "n": 0, "s": 0.0, "ss": 0.0, "max": 0.0, "shape": None} for name, _ in layers}
    first: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def fn(module: torch.nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            a, x = acc[name], out.to(torch.float32)
            a["ratio"].append(peak_to_mean(x).cpu())
            xd = x.double()
            a["n"] += x.numel()
            a["s"] += float(xd.sum())
            a["ss"] += float(xd.square().sum())
            a["max"] = max(a["max"], float(x.abs().max()))
            a["shape"] = list(x.shape[1:])
            if name not in first:
                first[name] = magnitude_map(x[:1])[0].cpu()
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    rng = torch.Generator().manual_seed(seed)
    try:
        for start in tqdm(range(0, num_samples, _BATCH), desc="droplets", unit="batch", disable=None):
            G.synthesis(sample_ws(G, min(_BATCH, num_samples - start), rng, device), noise_mode=noise_mode, force_fp32=True)
    finally:
        for h in handles:
            h.remove()
    stats = []
    for name, _ in layers:
        a = acc[name]
        ratio = torch.cat(a["ratio"])
        mean = a["s"] / a["n"]
        std = float(np.sqrt(max(a["ss"] / a["n"] - mean**2, 0.0)))
        stats.append(LayerStats(name, a["shape"][0], a["shape"][1], float(ratio.mean()), float(ratio.max()), mean, std, a["max"]))
    return DropletStats(num_samples, seed, stats), first


def plot_droplets(stats: DropletStats, maps: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Peak-to-mean ratio per layer (bars: mean over samples, ticks: worst sample) over the first sample's maps M."""
    n = len(stats.layers)
    fig = plt.figure(figsize=(max(6.4, 0.8 * n), 5.6), tight_layout=True)
    grid = fig.add_gridspec(2, n, height_ratios=[2.2, 1])
    ax = fig.add_subplot(grid[0, :])
    names = [s.name for s in stats.layers]
    ax.bar(names, [s.peak_to_mean for s in stats.layers], color="tab:blue", label="mean over samples")
    ax.scatter(names, [s.peak_to_mean_max for s in stats.layers], color="tab:red", marker="_", s=200, label="max over samples")
    ax.axhline(1, color="gray", linewidth=0.8)
    ax.set_ylabel("peak / mean of channel-normalised |x|")
    ax.set_title(f"Droplet statistics ({stats.num_samples} samples)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend(fontsize=8)
    for i, s in enumerate(stats.layers):
        sub = fig.add_subplot(grid[1, i])
        sub.imshow(maps[s.name].numpy(), cmap="magma")
        sub.set_axis_off()
        sub.set_title(f"{s.resolution}²", fontsize=7)
    save_figure(fig, path)


def write_droplets(stats: DropletStats, maps: dict[str, torch.Tensor], outdir: str | os.PathLike) -> tuple[Path, Path]:
    """droplets.{png,json} in `outdir`."""
    outdir = Path(outdir)
    png, js = outdir / "droplets.png", outdir / "droplets.json"
    plot_droplets(stats, maps, png)
    save_json(stats, js)
    return png, js

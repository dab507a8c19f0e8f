"""Per-image perceptual path lengths (StyleGAN2 Figure 5): their histogram and the images at either end.

Sample i draws z0, z1, maps them to w0, w1 and measures d(G(w0), G(lerp(w0, w1, ε))) / ε² (W space, end-point
sampling, ε = 1e-4) with `stylegan.metrics.perceptual.ppl_distances`, in batches of 2 seeded exactly as the
`ppl2_wend` metric seeds them, so with `distance="lpips"` these are the values whose 1%-99% filtered mean is
`ppl2_wend`. `distance="pixel-mse"` replaces the LPIPS embedding with the raw pixels (d = mean squared
difference of pixel values in [-1, 1]): a labelled stand-in for machines without the VGG16 weights, not PPL.
The grids show G(w0) of the samples with the lowest and the highest values.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..io.images import grid_layout, save_image_grid
from ..metrics.fid import index_seed
from ..metrics.perceptual import PPL_BATCH, PPL_EPSILON, PPL_NUM_SAMPLES, filtered_mean, ppl_distances, randomize_noise
from ..models.common import Generator
from .common import labels_for, plt, save_figure, save_json

DISTANCES = ("lpips", "pixel-mse")


class PixelEmbedding:
    """Stand-in for `VGG16.lpips_embedding`: squared distances are the mean squared pixel difference in [-1, 1]."""

    def lpips_embedding(self, img: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] pixels in [0, 255] -> [N, 3 H W] so that |e0 - e1|² = mean((x0 - x1)²) in [-1, 1] units."""
        assert img.ndim == 4, f"expected [N, C, H, W], got {list(img.shape)}"
        x = img.to(torch.float32) * (2 / 255) - 1
        return x.flatten(1) / np.sqrt(x[0].numel())


@dataclass
class PPLSamples:
    """Per-sample path lengths, their 10/50/90th percentiles and the indices of the extremes."""

    distance: str  # "lpips" (perceptual path length) or "pixel-mse" (pixel stand-in)
    epsilon: float
    space: str
    sampling: str
    num_samples: int
    seed: int
    percentiles: dict[str, float]
    filtered_mean: float  # the ppl2_wend statistic: mean between the 1st and 99th percentiles
    lowest: list[int]
    highest: list[int]
    values: list[float] = field(repr=False)


def _batch(G: Generator, seed: int, b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """z [2 PPL_BATCH, z_dim] and c [PPL_BATCH, c_dim] of batch b; redraws G's constant noise as `ppl2_wend` does."""
    rng = torch.Generator().manual_seed(index_seed(seed, b))
    z = torch.randn([PPL_BATCH * 2, G.z_dim], generator=rng)
    c = labels_for(G, PPL_BATCH, rng)
    randomize_noise(G, rng)
    return z.to(device), (torch.zeros([PPL_BATCH, 0]) if c is None else c).to(device)


@torch.no_grad()
def ppl_samples(G: Generator, num_samples: int = PPL_NUM_SAMPLES, seed: int = 0, distance: str = "lpips",
                device: torch.device | str = "cpu", num_extremes: int = 16,
                vgg: object | None = None) -> tuple[PPLSamples, torch.Tensor, torch.Tensor]:
    """Path lengths of `num_samples` samples (StyleGAN2 Fig. 5); also G(w0) of the lowest and highest `num_extremes`.

    `vgg` overrides the embedding (anything with `lpips_embedding`); by default LPIPS loads the VGG16 weights and
    "pixel-mse" uses `PixelEmbedding`. Conditional generators get random one-hot labels.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if num_samples < 2:
        raise ValueError(f"PPL needs at least 2 samples, got {num_samples}")
    device = torch.device(device)
    if vgg is None:
        if distance == "lpips":
            from ..metrics.vgg import load_vgg16

            vgg = load_vgg16(lpips=True, device=device, what="analyze ppl")
        else:
            vgg = PixelEmbedding()
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    batches = (num_samples + PPL_BATCH - 1) // PPL_BATCH
    dist = np.zeros(batches * PPL_BATCH, np.float64)
    for b in tqdm(range(batches), desc="ppl", unit="batch", disable=None):
        z, c = _batch(G, seed, b, device)
        dist[b * PPL_BATCH:(b + 1) * PPL_BATCH] = ppl_distances(G, vgg, z, c, PPL_EPSILON).double().cpu().numpy()
    dist = dist[:num_samples]
    k = min(num_extremes, num_samples)
    order = np.argsort(dist, kind="stable")
    lowest, highest = order[:k].tolist(), order[::-1][:k].tolist()
    images = {i: img for i, img in zip(sorted(set(lowest + highest)), _images_at(G, seed, sorted(set(lowest + highest)), device))}
    result = PPLSamples(distance, PPL_EPSILON, "w", "end", num_samples, seed,
                        {str(q): float(np.percentile(dist, q)) for q in (10, 50, 90)}, filtered_mean(dist),
                        lowest, highest, dist.tolist())
    return result, torch.stack([images[i] for i in lowest]), torch.stack([images[i] for i in highest])


def _images_at(G: Generator, seed: int, indices: list[int], device: torch.device) -> list[torch.Tensor]:
    """G.synthesis(w0) of samples `indices`, with the noise and labels their batch had."""
    out = []
    for i in indices:
        b, j = divmod(i, PPL_BATCH)
        z, c = _batch(G, seed, b, device)
        w0 = G.mapping(z[j:j + 1], c[j:j + 1])
        out.append(G.synthesis(w0, noise_mode="const", force_fp32=True)[0].cpu())
    return out


def plot_ppl(result: PPLSamples, path: str | os.PathLike) -> None:
    """Histogram of the per-sample values (up to the 99th percentile) with the 10/50/90th percentiles marked."""
    values = np.asarray(result.values)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), tight_layout=True)
    ax.hist(values, bins=min(100, max(10, len(values) // 20)), range=(0, float(np.percentile(values, 99)) or 1),
            color="tab:blue", alpha=0.8)
    for q, style in zip(("10", "50", "90"), (":", "--", ":")):
        ax.axvline(result.percentiles[q], color="black", linestyle=style, label=f"p{q} = {result.percentiles[q]:.4g}")
    name = "perceptual path length (LPIPS)" if result.distance == "lpips" else "pixel-MSE path length (not LPIPS)"
    ax.set_xlabel(name)
    ax.set_ylabel("samples")
    ax.set_title(f"{name}, W, end, ε={result.epsilon:g}, {result.num_samples} samples")
    ax.legend()
    save_figure(fig, path)


def write_ppl(result: PPLSamples, lowest: torch.Tensor, highest: torch.Tensor, outdir: str | os.PathLike) -> list[Path]:
    """ppl.{png,json}, ppl-lowest.png and ppl-highest.png in `outdir`."""
    outdir = Path(outdir)
    paths = [outdir / "ppl.png", outdir / "ppl.json", outdir / "ppl-lowest.png", outdir / "ppl-highest.png"]
    plot_ppl(result, paths[0])
    save_json(result, paths[1])
    for images, path in ((lowest, paths[2]), (highest, paths[3])):
        save_image_grid(images, path, grid_layout(len(images), aspect=1))
    return paths

"""Singular values of the synthesis Jacobian (StyleGAN2 supplement C, Figure 7).

For w = mapping(z) the Jacobian J = ∂ synthesis(ws) / ∂w maps the latent to the image pixels (C H W rows):
in W one w is broadcast to all num_ws layers (w_dim columns); in W+ every layer's w is a separate input
(num_ws w_dim columns). Each sample's spectrum σ_1 ≥ σ_2 ≥ ... is divided by σ_1, and the figure shows the mean
± std of the normalised spectra over samples. J is computed exactly with forward-mode AD (`torch.func.jacfwd`),
through the reference ops, so only small networks fit: `max_elements` bounds the size of J.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..models.common import Generator
from ..ops import fast_paths
from .common import plt, sample_ws, save_figure, save_json

NUM_SAMPLES = 10
MAX_ELEMENTS = 2**26  # 256 MiB of float32
SPACES = ("w", "w+")


@dataclass
class JacobianSpectrum:
    """Normalised singular values σ_i / σ_1 of the synthesis Jacobian: mean and std over samples (rank order)."""

    space: str
    shape: list[int]  # [rows (pixels), columns (latent dimensions)]
    num_samples: int
    seed: int
    mean: list[float]
    std: list[float]
    largest: list[float]  # σ_1 of each sample, before normalisation


def jacobian_shape(G: Generator, space: str) -> tuple[int, int]:
    """(pixels, latent dimensions) of the Jacobian in `space`."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    rows = G.img_channels * G.img_resolution**2
    return rows, G.w_dim * (G.num_ws if space == "w+" else 1)


def synthesis_jacobian(G: Generator, w: torch.Tensor, space: str = "w") -> torch.Tensor:
    """J [C H W, w_dim] (space "w", w [w_dim]) or [C H W, num_ws w_dim] (space "w+", w [num_ws, w_dim])."""
    expected = [G.w_dim] if space == "w" else [G.num_ws, G.w_dim]
    if list(w.shape) != expected:
        raise ValueError(f"w: expected shape {expected} for space {space!r}, got {list(w.shape)}")

    def image(x: torch.Tensor) -> torch.Tensor:
        ws = x.reshape(1, 1, G.w_dim).expand(1, G.num_ws, G.w_dim) if space == "w" else x.reshape(1, G.num_ws, G.w_dim)
        return G.synthesis(ws, noise_mode="const", force_fp32=True).flatten()

    with fast_paths(False):  # the CPU fast paths write into preallocated outputs, which forward-mode AD cannot trace
        return torch.func.jacfwd(image)(w.flatten().to(torch.float32))


def jacobian_spectrum(G: Generator, num_samples: int = NUM_SAMPLES, seed: int = 0, space: str = "w",
                      device: torch.device | str = "cpu", max_elements: int = MAX_ELEMENTS) -> JacobianSpectrum:
    """Mean ± std over `num_samples` random w of the Jacobian's singular values divided by the largest (Fig. 7)."""
    rows, cols = jacobian_shape(G, space)
    if rows * cols > max_elements:
        raise ValueError(f"the {space} Jacobian of this generator has {rows} x {cols} = {rows * cols:,} elements, over the "
                         f"limit of {max_elements:,}; use a smaller network (or raise the limit if memory allows)")
    if num_samples < 1:
        raise ValueError(f"need at least 1 sample, got {num_samples}")
    device = torch.device(device)
    rng = torch.Generator().manual_seed(seed)
    spectra, largest = [], []
    for _ in tqdm(range(num_samples), desc=f"jacobian ({space})", unit="sample", disable=None):
        ws = sample_ws(G, 1, rng, device)[0]
        J = synthesis_jacobian(G, ws[0] if space == "w" else ws, space)
        assert J.shape == (rows, cols), (list(J.shape), rows, cols)
        s = torch.linalg.svdvals(J.double()).cpu().numpy()
        largest.append(float(s[0]))
        spectra.append(s / s[0])
    spectra = np.stack(spectra)
    return JacobianSpectrum(space, [rows, cols], num_samples, seed, spectra.mean(0).tolist(), spectra.std(0).tolist(), largest)


def plot_spectra(results: list[JacobianSpectrum], path: str | os.PathLike) -> None:
    """Normalised singular values against their rank (log scale), mean line and ± std band per space."""
    fig, ax = plt.subplots(figsize=(6.4, 4), tight_layout=True)
    for r in results:
        mean, std = np.asarray(r.mean), np.asarray(r.std)
        idx = np.arange(1, len(mean) + 1)
        line, = ax.plot(idx, mean, label=f"{r.space.upper()} ({r.shape[1]} dims)")
        ax.fill_between(idx, np.clip(mean - std, 1e-12, None), mean + std, color=line.get_color(), alpha=0.25)
    ax.set_yscale("log")
    ax.set_xlabel("singular value index")
    ax.set_ylabel("σ_i / σ_1")
    ax.set_title(f"Synthesis Jacobian spectrum ({results[0].num_samples} samples, mean ± std)")
    ax.legend()
    save_figure(fig, path)


def write_spectra(results: list[JacobianSpectrum], outdir: str | os.PathLike) -> tuple[Path, Path]:
    """jacobian.{png,json} in `outdir`."""
    outdir = Path(outdir)
    png, js = outdir / "jacobian.png", outdir / "jacobian.json"
    plot_spectra(results, png)
    save_json({r.space: r for r in results}, js)
    return png, js

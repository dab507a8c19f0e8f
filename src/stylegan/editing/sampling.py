"""ws for seeds and classes as StyleGAN-XL's tools draw them (`torch_utils/gen_utils.get_w_from_seed`): z from
RandomState(seed), classes drawn from RandomState(seed) when none is given, the untruncated w, then truncation
(`models.common.truncate`) towards the class's W average or, with centroids (multimodal truncation), the nearest
centroid."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..models.common import Generator, truncate
from .latents import LatentFileError


def seed_classes(seed: int, c_dim: int, n: int = 1) -> np.ndarray:
    """The classes drawn for `seed` when none is given: RandomState(seed).randint(0, c_dim, n)."""
    return np.random.RandomState(seed).randint(low=0, high=c_dim, size=n)


def one_hot(classes: np.ndarray | list[int], c_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[N, c_dim] float32 one-hot labels."""
    idx = torch.as_tensor(np.asarray(classes, dtype=np.int64), device=device)
    return torch.nn.functional.one_hot(idx, c_dim).to(torch.float32)


def load_centroids(path: str | os.PathLike, w_dim: int) -> torch.Tensor:
    """Centroids in W for multimodal truncation: a [K, w_dim] float .npy (read with allow_pickle=False), as float32."""
    p = Path(path)
    try:
        arr = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise LatentFileError(f"{p}: no such file") from None
    except (OSError, ValueError) as e:
        raise LatentFileError(f"{p}: not a NumPy .npy file ({e})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != w_dim or arr.shape[0] < 1 or not np.issubdtype(arr.dtype, np.floating):
        what = f"shape {list(arr.shape)} {arr.dtype}" if isinstance(arr, np.ndarray) else "an .npz archive"
        raise LatentFileError(f"{p}: expected [K, {w_dim}] float centroids (w_dim={w_dim}), got {what}")
    return torch.from_numpy(arr.astype(np.float32))


def truncation_centers(G: Generator, w: torch.Tensor, classes: np.ndarray | None, centroids: torch.Tensor | None = None) -> torch.Tensor:
    """[N, w_dim] centres to truncate towards: the centroid nearest (L2) to each w [N, w_dim], else the class's W
    average (class-conditional StyleGAN-XL keeps one per class), else the W average."""
    if centroids is not None:
        return nearest_centroids(w, centroids)
    w_avg = w_average(G)
    if w_avg.ndim == 2:
        return w_avg[torch.as_tensor(np.asarray(classes, dtype=np.int64), device=w_avg.device)]
    return w_avg[None].expand(w.shape[0], -1)


def nearest_centroids(w: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """[N, w_dim]: the centroid [K, w_dim] nearest (L2) to each w [N, w_dim]."""
    centroids = centroids.to(w.device)
    return centroids[(centroids[None] - w[:, None]).norm(dim=2).argmin(1)]


def w_average(G: Generator) -> torch.Tensor:
    """`G.mapping.w_avg`: [w_dim], or [c_dim, w_dim] for a class-wise average."""
    w_avg = G.mapping.w_avg
    assert isinstance(w_avg, torch.Tensor)
    return w_avg


def seed_ws(G: Generator, seed: int, n: int = 1, class_idx: int | None = None, psi: float = 1.0,
            cutoff: int | None = None, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, np.ndarray | None]:
    """ws [n, num_ws, w_dim] and the classes of `n` samples of `seed` (classes None for unconditional networks):
    z = RandomState(seed).randn(n, z_dim), classes `class_idx` or drawn by `seed_classes`; without centroids the
    same ws as G.mapping(z, c, psi, cutoff)."""
    device = w_average(G).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32)).to(device)
    classes = None
    labels = None
    if G.c_dim > 0:
        classes = np.full(n, class_idx) if class_idx is not None else seed_classes(seed, G.c_dim, n)
        labels = one_hot(classes, G.c_dim, device)
    w = G.mapping(z, labels)
    return truncate(w, truncation_centers(G, w[:, 0], classes, centroids), psi, cutoff), classes

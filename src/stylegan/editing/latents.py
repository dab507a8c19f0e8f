"""Files of latents in W: `projected_w.npz` as the official projector writes it (key `w`, [N, num_ws, w_dim])."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.checkpoint import atomic_write_bytes
from ..models.common import Generator


class LatentFileError(ValueError):
    """A latent file that cannot be read or does not fit the network (one line, path first)."""


def save_projected_w(path: str | os.PathLike, ws: torch.Tensor, **extra: Any) -> None:
    """Write ws [N, num_ws, w_dim] (or [num_ws, w_dim]) as float32 under key `w`, plus `extra` arrays, atomically."""
    w = ws.detach().to(torch.float32).cpu().numpy()
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"ws must be [N, num_ws, w_dim] or [num_ws, w_dim], got {list(ws.shape)}")
    buf = io.BytesIO()
    np.savez(buf, w=w, **{k: np.asarray(v) for k, v in extra.items()})
    atomic_write_bytes(path, buf.getvalue())


def load_projected_w(path: str | os.PathLike, G: Generator | None = None) -> torch.Tensor:
    """Read `w` from an .npz (or a bare .npy) as float32 [N, num_ws, w_dim], checked against `G` when given.

    A [N, w_dim] array (one w per image, the W space) is broadcast to every layer.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            if isinstance(data, np.ndarray):
                w = data
            elif "w" in data.files:
                w = data["w"]
            else:
                raise LatentFileError(f"{p}: no array named 'w' (found: {', '.join(data.files) or 'none'})")
    except FileNotFoundError:
        raise LatentFileError(f"{p}: no such file") from None
    except (OSError, ValueError) as e:
        if isinstance(e, LatentFileError):
            raise
        raise LatentFileError(f"{p}: not a NumPy .npz/.npy file ({e})") from None
    if not np.issubdtype(w.dtype, np.floating):
        raise LatentFileError(f"{p}: 'w' holds {w.dtype}, expected floats")
    if w.ndim == 2 and G is not None and w.shape[1] == G.w_dim:
        w = np.repeat(w[:, None, :], G.num_ws, axis=1)
    if w.ndim != 3:
        raise LatentFileError(f"{p}: 'w' has shape {list(w.shape)}, expected [N, num_ws, w_dim]")
    if G is not None and tuple(w.shape[1:]) != (G.num_ws, G.w_dim):
        raise LatentFileError(f"{p}: 'w' has shape {list(w.shape)} but the network takes "
                              f"[N, {G.num_ws}, {G.w_dim}] (num_ws={G.num_ws}, w_dim={G.w_dim})")
    if not np.isfinite(w).all():
        raise LatentFileError(f"{p}: 'w' contains NaN or infinity")
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))

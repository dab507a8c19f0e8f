"""Shared plumbing of the analyses: the Agg matplotlib backend, atomic PNG/JSON writers, latent sampling."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..io.checkpoint import atomic_write_bytes  # noqa: E402
from ..models.common import Generator

__all__ = ["plt", "save_figure", "save_json", "to_jsonable", "sample_ws"]


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays and tuples -> plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_json(data: Any, path: str | os.PathLike) -> None:
    """Write `data` (dataclasses allowed) as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(to_jsonable(data), indent=2) + "\n").encode())


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Render `fig` to PNG bytes, write them atomically and close the figure."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def labels_for(G: Generator, n: int, rng: torch.Generator) -> torch.Tensor | None:
    """[n, c_dim] random one-hot labels for a conditional G, None for an unconditional one."""
    if G.c_dim == 0:
        return None
    c = torch.zeros([n, G.c_dim])
    c[torch.arange(n), torch.randint(G.c_dim, [n], generator=rng)] = 1
    return c


@torch.no_grad()
def sample_ws(G: Generator, n: int, rng: torch.Generator, device: torch.device, truncation_psi: float = 1) -> torch.Tensor:
    """[n, num_ws, w_dim] = G.mapping(z, c) for z ~ N(0, I) (and random one-hot c) drawn from `rng`."""
    z = torch.randn([n, G.z_dim], generator=rng)
    c = labels_for(G, n, rng)
    return G.mapping(z.to(device), None if c is None else c.to(device), truncation_psi=truncation_psi)

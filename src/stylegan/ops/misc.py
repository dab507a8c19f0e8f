"""Small differentiable primitives: 2nd-moment normalization, minibatch stddev, noise inputs; the shape check of
ops and networks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

NOISE_MODES = ("const", "random", "none")


def assert_shape(t: torch.Tensor | None, shape: list[int | None], name: str) -> torch.Tensor:
    """`t`, after a ValueError naming `name` and both shapes unless it has `shape` (None = any size along that axis)."""
    if t is None or t.ndim != len(shape) or any(s is not None and s != t.shape[i] for i, s in enumerate(shape)):
        expected = ", ".join("?" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape [{expected}], got {'none' if t is None else list(t.shape)}")
    return t


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x²) + eps) along `dim` (StyleGAN's PixelNorm of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def minibatch_stddev(x: torch.Tensor, group_size: int | None, num_channels: int = 1) -> torch.Tensor:
    """Append `num_channels` feature maps holding the stddev of each group of `group_size` samples.

    Sample i belongs to group i % (N / G), as in the official layer. A batch that the group size does
    not divide raises a clear error.
    """
    n, c, h, w = x.shape
    if group_size is not None and group_size < 1:
        raise ValueError(f"minibatch-stddev: group size must be >= 1 or None, got {group_size}")
    g = n if group_size is None else min(group_size, n)
    if n % g != 0:
        raise ValueError(
            f"minibatch-stddev: batch size {n} is not divisible by the group size {g}; "
            f"use a batch size that is a multiple of {g} or a smaller mbstd_group_size"
        )
    f = num_channels
    if c % f != 0:
        raise ValueError(f"minibatch-stddev: {c} channels are not divisible by mbstd_num_channels={f}")
    y = x.reshape(g, -1, f, c // f, h, w)  # [G,n,F,c,H,W]
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()  # [n,F,c,H,W]
    y = y.mean(dim=[2, 3, 4])  # [n,F]
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N,F,H,W]
    return torch.cat([x, y], dim=1)


def make_noise(
    mode: str,
    batch_size: int,
    resolution: int,
    strength: torch.Tensor,
    noise_const: torch.Tensor,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor | None:
    """Per-pixel noise input already scaled by `strength`: fresh ('random'), stored ('const') or None.
    Inside `per_sample_noise(generators)`, fresh noise of sample i comes from generators[i]."""
    if mode == "random":
        gens = getattr(_per_sample, "generators", None)
        if gens is not None and generator is None:
            if len(gens) != batch_size:
                raise ValueError(f"per_sample_noise: {len(gens)} generators for a batch of {batch_size}")
            noise = torch.stack([torch.randn([1, resolution, resolution], generator=g) for g in gens])
            return noise.to(device) * strength
        return torch.randn([batch_size, 1, resolution, resolution], device=device, generator=generator) * strength
    if mode == "const":
        return noise_const * strength
    if mode == "none":
        return None
    raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")


_per_sample = threading.local()


@contextmanager
def per_sample_noise(generators: Sequence[torch.Generator]) -> Iterator[None]:
    """In this thread, draw the 'random' noise inputs of sample i from `generators[i]` (CPU generators, one per
    sample of every batch run inside the block), so that a sample's image does not depend on which other samples
    share its batch: metrics give the same numbers at every batch size."""
    previous = getattr(_per_sample, "generators", None)
    _per_sample.generators = list(generators)
    try:
        yield
    finally:
        _per_sample.generators = previous

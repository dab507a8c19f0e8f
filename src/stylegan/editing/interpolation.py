"""Latent interpolation for videos: keyframes joined by linear, cubic-spline or spherical paths.

`cubic` and `linear` follow NVIDIA's gen_video.py: `scipy.interpolate.interp1d` over the keyframes, which
for a looping video are tiled `WRAPS` times on each side so that the spline closes smoothly. `slerp` is
Shoemake's spherical interpolation between consecutive keyframes (meant for z, as in the StyleGAN paper's
perceptual path length, §3.2 / appendix B).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.interpolate
import torch

KINDS = ("cubic", "linear", "slerp")
WRAPS = 2  # copies of the keyframes on each side of a looping spline, as gen_video.py


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dim: (sin((1-t)Ω) a + sin(tΩ) b) / sin Ω, Ω = angle(a, b).

    Unit vectors stay unit vectors. `t` is a number or a tensor that broadcasts against `a[..., :1]`.
    Nearly parallel (or antiparallel) pairs, where sin Ω < eps, fall back to linear interpolation.
    """
    if a.shape != b.shape:
        raise ValueError(f"slerp: a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(eps)
    omega = cos.clamp(-1, 1).acos()
    sin = omega.sin()
    parallel = sin < eps
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1 - t, ((1 - t) * omega).sin() / safe)
    wb = torch.where(parallel, t, (t * omega).sin() / safe)
    return wa * a + wb * b


def num_frames(num_keyframes: int, frames_per_key: int, loop: bool = True) -> int:
    """Frames of an interpolation: K*f when looping (back to the first keyframe), else (K-1)*f + 1."""
    return num_keyframes * frames_per_key if loop else (num_keyframes - 1) * frames_per_key + 1


def keyframe_interpolator(keys: torch.Tensor, frames_per_key: int, kind: str,
                          loop: bool = True) -> Callable[[np.ndarray], torch.Tensor]:
    """A function from frame indices [F] to interpolated latents [F, ...]; frame i lies at keyframe time i / f.

    `keys` is [K, ...]. Frame k*f is keyframe k exactly (up to float rounding of the spline). Looping paths
    run through keyframe K-1 back to keyframe 0. Latents are computed on request, so long videos need no
    memory for all their frames.
    """
    if kind not in KINDS:
        raise ValueError(f"interpolation kind must be one of {KINDS}, got {kind!r}")
    if frames_per_key < 1:
        raise ValueError(f"frames_per_key must be >= 1, got {frames_per_key}")
    k = keys.shape[0]
    need = 1 if loop else {"cubic": 4, "linear": 2, "slerp": 2}[kind]
    if k < need:
        raise ValueError(f"{kind} interpolation{' (not looping)' if not loop else ''} needs at least {need} "
                         f"keyframe(s), got {k}")
    total = num_frames(k, frames_per_key, loop)

    def check(frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        if frames.size and (frames.min() < 0 or frames.max() >= total):
            raise ValueError(f"frame indices must lie in [0, {total}), got {frames.min()}..{frames.max()}")
        return frames

    if kind == "slerp":
        def at(frames: np.ndarray) -> torch.Tensor:
            frames = check(frames)
            seg = np.minimum(frames // frames_per_key, k - 1 if loop else k - 2)
            u = torch.from_numpy((frames - seg * frames_per_key) / frames_per_key).to(keys)
            a, b = keys[torch.from_numpy(seg)], keys[torch.from_numpy((seg + 1) % k)]
            return slerp(a, b, u.reshape([-1] + [1] * (keys.ndim - 1)))
        return at

    y = keys.detach().cpu().numpy()
    if loop:  # keyframes at -K*WRAPS .. K*(WRAPS+1)-1, as gen_video.py
        x = np.arange(-k * WRAPS, k * (WRAPS + 1))
        y = np.tile(y, [2 * WRAPS + 1] + [1] * (y.ndim - 1))
    else:
        x = np.arange(k)
    interp = scipy.interpolate.interp1d(x, y, kind=kind, axis=0)

    def at(frames: np.ndarray) -> torch.Tensor:
        frames = check(frames)
        return torch.from_numpy(np.asarray(interp(frames / frames_per_key))).to(keys)
    return at


def interpolate_keyframes(keys: torch.Tensor, frames_per_key: int, kind: str, loop: bool = True) -> torch.Tensor:
    """Keyframes [K, ...] -> every frame [num_frames(K, f, loop), ...] (see `keyframe_interpolator`)."""
    return keyframe_interpolator(keys, frames_per_key, kind, loop)(np.arange(num_frames(keys.shape[0], frames_per_key, loop)))

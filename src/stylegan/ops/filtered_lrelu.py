"""Filtered leaky ReLU (StyleGAN3 §3.2): upsample, bias + lrelu + clamp at the higher rate, downsample.

Pure-PyTorch form of the official op's reference path (`_filtered_lrelu_ref`): bias, `upfirdn2d` up with
`fu` and gain up², leaky ReLU with gain / slope / clamp, `upfirdn2d` down with `fd`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .bias_act import bias_act
from .upfirdn2d import filter_size, parse_padding, upfirdn2d


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Per channel: + b, upsample by `up` (zero insertion), pad (with respect to the upsampled image;
    negative crops), filter with `fu`, ×gain, leaky ReLU (`slope`), clamp to ±`clamp`, filter with `fd`,
    keep every `down`-th pixel. Filters are 1-D (separable), 2-D, or None (identity).

    Output size: (in * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down per axis.
    """
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu: x must be [N, C, H, W], got {list(x.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"filtered_lrelu: b must have shape [{x.shape[1]}], got {list(b.shape)}")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"filtered_lrelu: up and down must be integers >= 1, got {up}, {down}")
    if not gain > 0 or not slope >= 0 or (clamp is not None and not clamp >= 0):
        raise ValueError(f"filtered_lrelu: need gain > 0, slope >= 0, clamp >= 0 or None; got {gain}, {slope}, {clamp}")
    px0, px1, py0, py1 = parse_padding(padding)
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    n, c, in_h, in_w = x.shape
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    if out_w < 1 or out_h < 1:
        raise ValueError(f"filtered_lrelu: padding {[px0, px1, py0, py1]} leaves no output for input {in_h}x{in_w}")

    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
    assert x.shape == (n, c, out_h, out_w), (x.shape, (n, c, out_h, out_w))
    return x

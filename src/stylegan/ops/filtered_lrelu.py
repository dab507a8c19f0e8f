"""Filtered leaky ReLU (StyleGAN3 §3.2): upsample, bias + lrelu + clamp at the higher rate, downsample.

Pure-PyTorch form of the official op's reference path (`_filtered_lrelu_ref`): bias, `upfirdn2d` up with
`fu` and gain up², leaky ReLU with gain / slope / clamp, `upfirdn2d` down with `fd`.

Fast path (float32, `fast_paths_enabled()`): each separable (1-D) resampling step — zero insertion, padding or
crop, FIR filter, subsampling — is a linear map along one axis, applied as one dense matrix product per axis
(`x @ A_w`, `A_hᵀ @ x`) with a cached banded matrix built from the same (scaled, flipped) taps. No zero-inserted
or padded copies and no discarded outputs are materialised, and the products run on the BLAS kernels, which are
far faster on CPU than long depthwise convolutions. 2-D (radial) filters keep `upfirdn2d` (its own fast path).
The activation gain is folded into a separable downsampling matrix (the clamp scaled to match) and, without
autograd, the activation runs in place on the upsampled intermediate.
Non-finite inputs spread along their row / column there (0 · inf), where the reference keeps them local.

On CUDA (`fastpath.cuda_kernels`) the fast path also serves float16 (the products run on tensor cores with full
precision reductions, one rounding per product as NVIDIA's kernel rounds once per op), every product is a
[.., rows, k] @ [k, cols] matrix product (the vertical pass on a transposed view, so no per-image copy of a
matrix is built or saved), and inputs are never split into groups of channels (a CPU-cache measure).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from typing import Iterator, Sequence

import torch

from . import backend, fastpath
from .bias_act import bias_act
from .fastpath import fast_dtype, fast_paths_enabled, under_transform
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
    gain, slope = float(gain), float(slope)  # numpy scalars would reach the cache keys
    clamp = None if clamp is None else float(clamp)
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

    if fast_paths_enabled() and fast_dtype(x) and _triton_covers(x, fu, fd):
        if up == down == 1 and fu is None and fd is None and (px0, px1, py0, py1) == (0, 0, 0, 0):  # ToRGB
            x = bias_act(x, b, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
        else:
            x = backend.triton_kernels()[0].filtered_lrelu_triton(x, fu, fd, b, up, down, (px0, px1, py0, py1), gain,
                                                                  slope, clamp, flip_filter)
    elif fast_paths_enabled() and fast_dtype(x):
        x = _filtered_lrelu_fast(x, fu, fd, b, up, down, (px0, px1, py0, py1), gain, slope, clamp, flip_filter).contiguous()
    else:
        x = bias_act(x, b)
        x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
        x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
        x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
    assert x.shape == (n, c, out_h, out_w), (x.shape, (n, c, out_h, out_w))
    return x


def _triton_covers(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None) -> bool:
    """True when the fused Triton kernel runs: filters that need no gradient, no torch.func transform."""
    if any(f is not None and f.requires_grad for f in (fu, fd)) or under_transform(x):
        return False
    return backend.use_triton(x)


# ----------------------------------------------------------------------------- fast path

# Resampling matrices, keyed by the filter's identity and version plus everything they depend on; entries
# die with their filter (checked through a weak reference).
_matrix_cache: dict[tuple, tuple[weakref.ref | None, torch.Tensor]] = {}
_MATRIX_CACHE_MAX = 256
_CHUNK_ELEMENTS = 1 << 21  # upsampled elements per group of channels in inference (8 MiB of float32)


def _axis_matrix(f: torch.Tensor | None, length: int, up: int, p0: int, p1: int, down: int, gain: float, flip: bool,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[length, out] matrix A of the 1-D map 'zero-insert by `up`, pad (p0, p1) (negative crops), true
    convolution with `f` · gain^(1/2) (correlation with flip), keep every `down`-th sample': y = x @ A."""
    cacheable = not torch.compiler.is_compiling() and (f is None or not (f.requires_grad or under_transform(f)))
    if cacheable:
        key = (None if f is None else id(f), None if f is None else f._version, length, up, p0, p1, down, gain, flip,
               dtype, device, torch.is_inference_mode_enabled())
        hit = _matrix_cache.get(key)
        if hit is not None and (f is None or hit[0]() is f):
            return hit[1]
    if f is None:
        f = torch.ones([1], dtype=torch.float32, device=device)
    taps = f.shape[0]
    fc = f * (gain ** (f.ndim / 2))  # the same scaling as upfirdn2d's
    fc = fc.to(dtype=dtype, device=device)
    if not flip:
        fc = fc.flip(0)  # upfirdn2d correlates with the flipped taps
    out_len = length * up + p0 + p1 - taps + 1
    i = torch.arange(length, device=device)[:, None]
    o = torch.arange(0, out_len, down, device=device)[None, :]
    k = i * up + p0 - o  # tap linking input sample i to output sample o
    valid = (k >= 0) & (k < taps)
    a = torch.where(valid, fc[k.clamp(0, taps - 1)], torch.zeros([], dtype=dtype, device=device))
    if cacheable:
        a = a.detach()
        if len(_matrix_cache) >= _MATRIX_CACHE_MAX:
            _matrix_cache.clear()
        _matrix_cache[key] = (None if key[0] is None else weakref.ref(f), a)
    return a


def _resample_separable(x: torch.Tensor, f: torch.Tensor | None, up: int, down: int, padding: tuple[int, int, int, int],
                        gain: float, flip: bool) -> torch.Tensor:
    """upfirdn2d(x, f, up, down, padding, flip, gain) for a 1-D (or no) filter, as two matrix products."""
    px0, px1, py0, py1 = padding
    if f is None and up == 1 and down == 1 and padding == (0, 0, 0, 0):
        return x if gain == 1 else x * gain
    a_w = _axis_matrix(f, x.shape[3], up, px0, px1, down, gain, flip, x.dtype, x.device)  # gain^(1/2) per axis
    a_h = _axis_matrix(f, x.shape[2], up, py0, py1, down, gain, flip, x.dtype, x.device)
    if fastpath.cuda_kernels(x):
        # Both products as [.., rows, k] @ [k, cols] (batch dimensions fold into the rows: one GEMM each). The
        # second one reads a transposed copy of the first's (smaller) result and leaves a transposed view, which a
        # following call consumes in the other order, so the large upsampled intermediate is never copied.
        with _full_precision_reductions(x):
            if x.ndim == 4 and x.transpose(2, 3).is_contiguous() and not x.is_contiguous():
                return (x.transpose(2, 3) @ a_h).transpose(2, 3) @ a_w  # [N, C, H', W']
            return ((x @ a_w).transpose(2, 3) @ a_h).transpose(2, 3)  # [N, C, H', W'] as a transposed view
    x = torch.matmul(x, a_w)  # [N, C, H, W']
    return torch.matmul(a_h.t(), x)  # [N, C, H', W']


@contextlib.contextmanager
def _full_precision_reductions(x: torch.Tensor) -> Iterator[None]:
    """float16 / bfloat16 matrix products with float32 accumulation throughout (cuBLAS may otherwise reduce
    split-K partial sums in the input precision); no-op for other dtypes and while compiling."""
    flags = torch.backends.cuda.matmul
    name = {torch.float16: "allow_fp16_reduced_precision_reduction",
            torch.bfloat16: "allow_bf16_reduced_precision_reduction"}.get(x.dtype)
    if name is None or torch.compiler.is_compiling() or not getattr(flags, name):
        yield
        return
    setattr(flags, name, False)
    try:
        yield
    finally:
        setattr(flags, name, True)


def _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    graph = (torch.is_grad_enabled() and x.requires_grad) or under_transform(x)
    n, c, h, w = x.shape
    fu_w, fu_h = filter_size(fu)
    upsampled = n * (h * up + padding[2] + padding[3] - fu_h + 1) * (w * up + padding[0] + padding[1] - fu_w + 1)
    if not graph and c > 1 and upsampled * c > _CHUNK_ELEMENTS and fastpath.prefer_cpu_kernels(x):
        # Without autograd, groups of channels go through the whole op one after the other, so the upsampled
        # intermediate stays in cache (about 1.5-2x faster on CPU for StyleGAN3's large layers).
        k = max(1, _CHUNK_ELEMENTS // upsampled)
        bs = [None] * math.ceil(c / k) if b is None else b.split(k)
        return torch.cat([_filtered_lrelu_fast(xc, fu, fd, bc, up, down, padding, gain, slope, clamp, flip_filter)
                          for xc, bc in zip(x.split(k, dim=1), bs)], dim=1)
    x_in = x
    x = bias_act(x, b)
    if fu is None or fu.ndim == 1:
        x = _resample_separable(x, fu, up, 1, padding, up**2, flip_filter)
    else:
        x = upfirdn2d(x, fu, up=up, padding=list(padding), gain=up**2, flip_filter=flip_filter)
    # The gain moves past the clamp into the (linear) downsampling: clamp(g·lrelu(y), c) = g·clamp(lrelu(y), c/g).
    separable_down = fd is None or fd.ndim == 1
    act_gain = 1 if separable_down else gain
    act_clamp = None if clamp is None else (clamp if act_gain == gain else clamp / gain)
    if graph:
        x = bias_act(x, act="lrelu", alpha=slope, gain=act_gain, clamp=act_clamp)
    else:  # no graph: in place on our own intermediate (one pass per step, no copy)
        if x is x_in:
            x = x.clone()
        torch.nn.functional.leaky_relu_(x, slope)
        if act_gain != 1:
            x.mul_(act_gain)
        if act_clamp is not None:
            x.clamp_(-act_clamp, act_clamp)
    if separable_down:
        return _resample_separable(x, fd, 1, down, (0, 0, 0, 0), gain, flip_filter)  # gain^(1/2) per axis
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)

"""Modulated convolution with weight demodulation (StyleGAN2 paper, section 2.2, eqs. 1-3): StyleGAN2's, with
resampling and noise, and StyleGAN3's, with pre-normalised weights and styles and an input gain."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from . import fastpath
from .conv2d_resample import conv2d_resample
from .misc import assert_shape
from .upfirdn2d import Padding, parse_padding

_grouped = threading.local()  # per-thread override set by `grouped_modconv`


def grouped_modconv_enabled() -> bool:
    """False inside `with grouped_modconv(False)` in this thread, else True."""
    return getattr(_grouped, "enabled", True)


@contextmanager
def grouped_modconv(enabled: bool = True) -> Iterator[None]:
    """`with grouped_modconv(False): ...` (this thread only): modulated convolutions never run as one convolution
    with a group per sample (NVIDIA's fused modconv, whose group count is the batch size) but as the same sums with
    one weight shared by the batch: activations scaled by the styles before, by the demodulation coefficients after
    (eqs. 1-3 rearranged). Graphs with a dynamic batch size (ONNX, TorchScript) need that form."""
    previous = getattr(_grouped, "enabled", None)
    _grouped.enabled = bool(enabled)
    try:
        yield
    finally:
        if previous is None:
            del _grouped.enabled
        else:
            _grouped.enabled = previous


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """Conv of `x` [N,I,H,W] with `weight` [O,I,k,k] scaled per sample by `styles` [N,I].

    fused_modconv=True builds per-sample weights and runs one grouped convolution; False scales the
    activations before and after a shared convolution instead (same result, different cost).
    `noise` (already multiplied by its strength) is added after demodulation.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    assert x.ndim == 4 and x.shape[1] == in_channels, (x.shape, weight.shape)
    assert styles.shape == (batch_size, in_channels), (styles.shape, batch_size, in_channels)
    fused_modconv = fused_modconv and grouped_modconv_enabled()
    if fastpath.fast_paths_enabled() and x.dtype == weight.dtype == styles.dtype == torch.float32:
        return _modconv_fast(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, fused_modconv)
    return _modconv_ref(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, fused_modconv)


def _modconv_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None,
    up: int,
    down: int,
    padding: Padding,
    resample_filter: torch.Tensor | None,
    demodulate: bool,
    flip_weight: bool,
    fused_modconv: bool,
) -> torch.Tensor:
    """Reference path, step by step as the official `modulated_conv2d`."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    # Pre-normalize to keep fp16 in range (the scale cancels in demodulation).
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1) if demodulate or fused_modconv else None  # eq. 1: w' = s_i w
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if w is not None and demodulate else None  # eq. 3: 1/sqrt(sum w'^2 + eps)
    if w is not None and dcoefs is not None and fused_modconv:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    assert w is not None
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)  # in place: an fp32 noise is added in fp32 and rounded once, as officially
    return x


# ----------------------------------------------------------------------------- fast path


def _modconv_fast(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None,
    up: int,
    down: int,
    padding: Padding,
    resample_filter: torch.Tensor | None,
    demodulate: bool,
    flip_weight: bool,
    fused_modconv: bool,
) -> torch.Tensor:
    """float32 fast path; same function as the reference up to float32 rounding.

    * dcoefs[n, o] = rsqrt(sum_i s[n, i]^2 * sum_k w[o, i, k]^2 + eps): an [N,I] x [I,O] product instead
      of squaring and summing the [N,O,I,k,k] modulated weight (identical in exact arithmetic);
    * fused (not on CPU): the modulated, demodulated weight in one product weight * (s * dcoefs);
    * on CPU always the non-fused algorithm (one shared convolution, channels-last activations), which
      oneDNN runs much faster than the per-sample grouped convolution; 1x1 convolutions without
      resampling (tRGB) as a batched matrix product with per-sample weights, so the activations are
      read once and never scaled.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    on_cpu = fastpath.prefer_cpu_kernels(x)
    dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() if demodulate else None  # [N,O]

    if on_cpu and kh == 1 and kw == 1 and up == 1 and down == 1 and parse_padding(padding) == (0, 0, 0, 0):
        w = weight.reshape(1, out_channels, in_channels) * styles.reshape(n, 1, in_channels)  # [N,O,I]
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, out_channels, 1)
        x = _batched_1x1(x, w)
        return _add_noise(x, None, noise)

    if fused_modconv and not on_cpu:
        scale = styles.reshape(n, 1, in_channels, 1, 1)
        if dcoefs is not None:
            scale = scale * dcoefs.reshape(n, out_channels, 1, 1, 1)
        w = (weight.unsqueeze(0) * scale).reshape(-1, in_channels, kh, kw)
        x = x.reshape(1, -1, *x.shape[2:])
        x = conv2d_resample(x, w, f=resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight)
        x = x.reshape(n, -1, *x.shape[2:])
        return x.add_(noise) if noise is not None else x

    s = styles.reshape(n, -1, 1, 1)
    if on_cpu and not x.is_contiguous(memory_format=torch.channels_last):
        if _needs_grad(x, s) or torch.compiler.is_compiling():
            x = x.contiguous(memory_format=torch.channels_last) * s
        else:  # scale and change layout in one pass
            x = torch.mul(x, s, out=torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last))
    else:
        x = x * s
    x = conv2d_resample(x, weight, f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
    return _add_noise(x, dcoefs, noise)


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _add_noise(x: torch.Tensor, dcoefs: torch.Tensor | None, noise: torch.Tensor | None) -> torch.Tensor:
    """x * dcoefs + noise on a fresh convolution output `x`, in place when autograd is not involved.

    Both branches run the same kernels, so results do not depend on whether gradients are tracked.
    """
    d = dcoefs.reshape(x.shape[0], -1, 1, 1) if dcoefs is not None else None
    in_place = not _needs_grad(x, d, noise) and (noise is None or _broadcasts_into(noise, x))
    if d is not None and noise is not None:
        if in_place and not torch.compiler.is_compiling():
            return torch.addcmul(noise, x, d, out=x)
        return torch.addcmul(noise, x, d)
    if d is not None:
        return x.mul_(d) if in_place else x * d
    if noise is not None:
        return x.add_(noise) if in_place else x + noise
    return x


def _broadcasts_into(t: torch.Tensor, x: torch.Tensor) -> bool:
    """True when `x op t` has x's shape (so it can be computed in place)."""
    return t.ndim <= x.ndim and all(a == 1 or a == b for a, b in zip(reversed(t.shape), reversed(x.shape)))


def _batched_1x1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """1x1 convolution of x [N,I,H,W] with per-sample weights w [N,O,I] as one batched matmul."""
    n, i, h, wd = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * wd, i), w.transpose(1, 2))  # [N,HW,O]
        return y.reshape(n, h, wd, -1).permute(0, 3, 1, 2)  # channels-last view
    return torch.bmm(w, x.reshape(n, i, h * wd)).reshape(n, -1, h, wd)


# ----------------------------------------------------------------------------- StyleGAN3


def modulated_conv2d_sg3(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True, padding: int = 0,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN3's modulated convolution (NVlabs' `networks_stylegan3.modulated_conv2d`): weight and styles
    pre-normalised, per-sample weights w'_oikk = w_oikk s_i / ||w' s||_o (demodulation) times an optional input
    gain, one grouped conv (with fast paths on, 1x1 float32 convolutions as one batched matrix product, and larger
    float32 kernels on CPU as one shared convolution of the scaled activations, see `_modconv_sg3_shared`)."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    assert_shape(x, [batch_size, in_channels, None, None], "modulated_conv2d_sg3 x")
    assert_shape(styles, [batch_size, in_channels], "modulated_conv2d_sg3 styles")
    w = weight
    s = styles
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    fast = x.dtype == torch.float32 and fastpath.fast_paths_enabled()
    graph = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or styles.requires_grad)
    if kh * kw > 1 and fast and fastpath.prefer_cpu_kernels(x) and not graph and not fastpath.under_transform(x):
        return _modconv_sg3_shared(x, w, s, demodulate, padding, input_gain)
    w_shared = w  # [O,I,k,k], pre-normalised
    w = w.unsqueeze(0) * s.unsqueeze(1).unsqueeze(3).unsqueeze(4)  # [N,O,I,k,k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N,O]
        w = w * dcoefs.unsqueeze(2).unsqueeze(3).unsqueeze(4)
    if input_gain is not None:
        input_gain = input_gain.expand(batch_size, in_channels)
        w = w * input_gain.unsqueeze(1).unsqueeze(3).unsqueeze(4)
    if not grouped_modconv_enabled():  # the same sums with one weight for the batch (`grouped_modconv`)
        scale = s if input_gain is None else s * input_gain
        y = torch.nn.functional.conv2d(x * scale.reshape(batch_size, -1, 1, 1).to(x.dtype), w_shared.to(x.dtype), padding=padding)
        return y * dcoefs.reshape(batch_size, -1, 1, 1).to(y.dtype) if demodulate else y
    if kh == kw == 1 and padding == 0 and fast:
        # Fast path: a 1x1 grouped convolution is a batched matrix product (faster on CPU, same sums).
        y = torch.bmm(w.reshape(batch_size, out_channels, in_channels), x.reshape(batch_size, in_channels, -1))
        return y.reshape(batch_size, out_channels, *x.shape[2:])
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = torch.nn.functional.conv2d(x, w.to(x.dtype), padding=padding, groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])


def _modconv_sg3_shared(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor, demodulate: bool, padding: int,
                        input_gain: torch.Tensor | None) -> torch.Tensor:
    """CPU inference path of `modulated_conv2d_sg3` (after the pre-normalisation): conv(x * s * gain, w) * dcoefs with
    one weight shared by the batch on channels-last activations, which oneDNN runs faster than the grouped
    convolution (its backward is slower, so training keeps the grouped one); dcoefs[n, o] =
    rsqrt(sum_i s[n, i]^2 sum_k w[o, i, k]^2 + eps), eq. 3 as an [N,I] x [I,O] product."""
    n = x.shape[0]
    scale = s if input_gain is None else s * input_gain.expand(n, s.shape[1])
    cl = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    y = torch.nn.functional.conv2d(torch.mul(x, scale.reshape(n, -1, 1, 1), out=cl), w, padding=padding)  # scale + layout in one pass
    out = torch.empty(y.shape, dtype=y.dtype, device=y.device)  # back to NCHW in the last pass
    if not demodulate:
        return out.copy_(y)
    d = (s.square() @ w.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N,O]
    return torch.mul(y, d.reshape(n, -1, 1, 1), out=out)

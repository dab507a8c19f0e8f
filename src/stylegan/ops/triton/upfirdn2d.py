"""upfirdn2d (upsample, pad, FIR filter, downsample) as one polyphase Triton pass, any up/down/padding/filter.

Per axis the op is the linear map y[o] = sum_i x[i] g[o*down - i*up + s] (0 <= index < taps), with g the taps in
convolution order (the filter, flipped when flip_filter=True) and s = taps - 1 - pad0. Each output
reads only the taps of its phase: ceil(taps / up) per axis, no zero-inserted or padded tensor. The transpose of the
map (the backward pass) is the same map with up and down swapped, g flipped and s -> taps - 1 - s: the kernel again,
to any order (R1, path length).
"""

from collections.abc import Sequence

from typing import Any

import torch
import triton
import triton.language as tl

from ..fastpath import tensor_cache
from .library import define, grid_1d

_BH, _BW = 16, 32


@triton.jit
def _upfirdn2d_kernel(x_ptr, g_ptr, gy_ptr, y_ptr, channels, in_h, in_w, out_h, out_w, tiles_w, tiles,
                      sxn, sxc, sxh, sxw, syn, syc, syh, syw, s_x, s_y, off_x, off_y,
                      UP_X: tl.constexpr, UP_Y: tl.constexpr, DOWN_X: tl.constexpr, DOWN_Y: tl.constexpr,
                      KW: tl.constexpr, KH: tl.constexpr, SEPARABLE: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr):
    pid = tl.program_id(0)
    plane = pid // tiles
    tile = pid % tiles
    n = (plane // channels).to(tl.int64)
    c = (plane % channels).to(tl.int64)
    oy = (tile // tiles_w) * BH + tl.arange(0, BH)[:, None]
    ox = (tile % tiles_w) * BW + tl.arange(0, BW)[None, :]
    # Input sample and tap of the first term of each output; off_* (from the host) keeps the operands of // and %
    # non-negative, where C and Python division agree.
    qy = oy * DOWN_Y + s_y + off_y * UP_Y
    qx = ox * DOWN_X + s_x + off_x * UP_X
    iy0 = qy // UP_Y - off_y
    ix0 = qx // UP_X - off_x
    ky0 = qy % UP_Y
    kx0 = qx % UP_X
    x_base = x_ptr + n * sxn + c * sxc
    acc = tl.zeros([BH, BW], dtype=tl.float32)
    for a in range(0, (KH + UP_Y - 1) // UP_Y):
        ky = ky0 + a * UP_Y
        iy = iy0 - a
        valid_y = (ky < KH) & (iy >= 0) & (iy < in_h)
        for b in range(0, (KW + UP_X - 1) // UP_X):
            kx = kx0 + b * UP_X
            ix = ix0 - b
            valid = valid_y & (kx < KW) & (ix >= 0) & (ix < in_w)
            v = tl.load(x_base + iy * sxh + ix * sxw, mask=valid, other=0).to(tl.float32)
            if SEPARABLE:
                w = tl.load(gy_ptr + ky, mask=ky < KH, other=0) * tl.load(g_ptr + kx, mask=kx < KW, other=0)
            else:
                w = tl.load(g_ptr + ky * KW + kx, mask=(ky < KH) & (kx < KW), other=0)
            acc += v * w
    inside = (oy < out_h) & (ox < out_w)
    tl.store(y_ptr + n * syn + c * syc + oy * syh + ox * syw, acc.to(y_ptr.dtype.element_ty), mask=inside)


def _out_size(params: Sequence[int]) -> tuple[int, int]:
    return params[6], params[7]


def _fake(x: torch.Tensor, g: torch.Tensor, gy: torch.Tensor | None, params: Sequence[int]) -> torch.Tensor:
    out_h, out_w = _out_size(params)
    return x.new_empty([x.shape[0], x.shape[1], out_h, out_w])


@define("upfirdn2d", fake=_fake)
def _upfirdn2d_op(x: torch.Tensor, g: torch.Tensor, gy: torch.Tensor | None, params: Sequence[int]) -> torch.Tensor:
    """params = [up_x, up_y, down_x, down_y, s_x, s_y, out_h, out_w]; g: [KH, KW] taps, or [KW] x taps with
    `gy` [KH] y taps (separable), float32, in convolution order."""
    up_x, up_y, down_x, down_y, s_x, s_y, out_h, out_w = params
    n, c, in_h, in_w = x.shape
    memory_format = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
    y = torch.empty([n, c, out_h, out_w], dtype=x.dtype, device=x.device, memory_format=memory_format)
    kh, kw = (gy.shape[0], g.shape[0]) if gy is not None else g.shape
    off_x = max(0, -s_x) // up_x + 1
    off_y = max(0, -s_y) // up_y + 1
    tiles_w = triton.cdiv(out_w, _BW)
    tiles = triton.cdiv(out_h, _BH) * tiles_w
    _upfirdn2d_kernel[grid_1d(n * c * tiles)](
        x, g, gy if gy is not None else g, y, c, in_h, in_w, out_h, out_w, tiles_w, tiles,
        *x.stride(), *y.stride(), s_x, s_y, off_x, off_y,
        UP_X=up_x, UP_Y=up_y, DOWN_X=down_x, DOWN_Y=down_y, KW=kw, KH=kh, SEPARABLE=gy is not None, BH=_BH, BW=_BW)
    return y


def transpose_params(params: Sequence[int], g: torch.Tensor, gy: torch.Tensor | None, in_size: Sequence[int]) -> list[int]:
    """The parameters of the transposed map (the backward pass), whose output has the input's size `in_size`."""
    up_x, up_y, down_x, down_y, s_x, s_y, _, _ = params
    kh, kw = (gy.shape[0], g.shape[0]) if gy is not None else g.shape
    return [down_x, down_y, up_x, up_y, kw - 1 - s_x, kh - 1 - s_y, in_size[0], in_size[1]]


def _flip(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.flip(list(range(t.ndim)))


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, g, gy, params = inputs
    ctx.save_for_backward(g, gy)
    ctx.params = list(params)
    ctx.in_size = tuple(x.shape[2:])


def _backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
    g, gy = ctx.saved_tensors
    dx = _upfirdn2d_op(dy, _flip(g), _flip(gy), transpose_params(ctx.params, g, gy, ctx.in_size))
    return dx, None, None, None


_upfirdn2d_op.register_autograd(_backward, setup_context=_setup)


def _taps(f: torch.Tensor, flip_filter: bool, gain: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The kernel's taps, float32: f * gain^(ndim/2) in convolution order (the reference correlates with the flipped
    filter, i.e. convolves with f, unless flip_filter), as (2-D taps, None) or (x taps, y taps)."""

    def make() -> tuple[torch.Tensor, torch.Tensor | None]:
        g = (f * (gain ** (f.ndim / 2))).to(device=device, dtype=torch.float32)
        if flip_filter:
            g = g.flip(list(range(g.ndim)))
        g = g.contiguous()
        return (g, g) if g.ndim == 1 else (g, None)

    return tensor_cache(f, ("triton.upfirdn2d", flip_filter, gain, device), make)


def upfirdn2d_triton(x: torch.Tensor, f: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
                     padding: tuple[int, int, int, int], flip_filter: bool, gain: float) -> torch.Tensor:
    """`stylegan.ops.upfirdn2d` (parsed arguments, float32 filter that needs no gradient) on the Triton kernel."""
    (up_x, up_y), (down_x, down_y) = up, down
    px0, px1, py0, py1 = padding
    g, gy = _taps(f, flip_filter, gain, x.device)
    kh, kw = (gy.shape[0], g.shape[0]) if gy is not None else g.shape
    out_h = (x.shape[2] * up_y + py0 + py1 - kh) // down_y + 1
    out_w = (x.shape[3] * up_x + px0 + px1 - kw) // down_x + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"upfirdn2d: padding {list(padding)} leaves no output for input {list(x.shape[2:])}")
    return _upfirdn2d_op(x, g, gy, [up_x, up_y, down_x, down_y, kw - 1 - px0, kh - 1 - py0, out_h, out_w])

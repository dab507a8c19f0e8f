"""Fused filtered leaky ReLU (StyleGAN3 §3.2) as one Triton pass over output tiles, forward and backward.

One program computes a tile of outputs of one channel: it loads the input tile plus halo (+ bias), runs the up-FIR
as two matrix products with tile-local banded matrices built from the taps (tensor cores for float16), applies
leaky ReLU × gain and the clamp in registers, runs the down-FIR as two more products and writes the tile. The
upsampled intermediate never leaves the chip; with autograd, a 2-bit code per intermediate pixel (negative,
clamped) is stored for the backward pass. HBM traffic is input + output + codes, as with NVIDIA's CUDA kernel.

Per axis each FIR stage is the map y[o] = sum_i x[i] g[o*down - i*up + s] (see `triton.upfirdn2d`). The backward pass
is the same kernel with the stages transposed (down-FIR transposed first: up by `down`, flipped taps; then the
up-FIR transposed: down by `up`) and the activation replaced by multiplication with the stored slopes; that map is
linear, so its own backward (second order) is the forward structure with the stored slopes: arbitrary order.
2-D filters (config R's radial down filters) enter as sums of separable terms (their SVD), exact to float32.
Matrix products accumulate in float32 (`input_precision="ieee"` for float32 tensors: no TF32); float16 tensors
round the intermediate products to float16 between the stages, as the reference path rounds every op.
"""

import functools
from collections.abc import Sequence

from typing import Any

import torch
import triton
import triton.language as tl

from ..fastpath import tensor_cache
from .library import define, grid_1d, next_pow2

_CODE_NEGATIVE, _CODE_CLAMPED = 1, 2
MODE_ACT, MODE_ACT_CODES, MODE_MASKED = 0, 1, 2


@triton.jit
def _flrelu_kernel(x_ptr, b_ptr, g1y_ptr, g1x_ptr, g2y_ptr, g2x_ptr, y_ptr, m_ptr,
                   channels, in_h, in_w, z_h, z_w, out_h, out_w, tiles_w, tiles,
                   sxn, sxc, sxh, sxw, s1y, s1x, s2y, s2x, off_y, off_x,
                   r1, r2, k1y, k1x, k2y, k2x, so_y, so_x, slope, gain, clamp,
                   UP_Y: tl.constexpr, UP_X: tl.constexpr, DN_Y: tl.constexpr, DN_X: tl.constexpr,
                   BI_Y: tl.constexpr, BI_X: tl.constexpr, BZ_Y: tl.constexpr, BZ_X: tl.constexpr,
                   BO_Y: tl.constexpr, BO_X: tl.constexpr, MODE: tl.constexpr, HAS_BIAS: tl.constexpr,
                   HAS_CLAMP: tl.constexpr, PREC: tl.constexpr):
    pid = tl.program_id(0)
    plane = pid // tiles
    tile = pid % tiles
    ty = tile // tiles_w
    tx = tile % tiles_w
    n = (plane // channels).to(tl.int64)
    c = plane % channels
    dt = y_ptr.dtype.element_ty

    # Outputs o0 .. o0 + so - 1 need intermediate samples z0 .. z0 + BZ - 1 and inputs i0 .. i0 + BI - 1.
    o0y = ty * so_y
    o0x = tx * so_x
    z0y = o0y * DN_Y + s2y - k2y + 1
    z0x = o0x * DN_X + s2x - k2x + 1
    i0y = (z0y + s1y - k1y + UP_Y + off_y * UP_Y) // UP_Y - off_y  # ceil((z0 + s1 - k1 + 1) / up), operands >= 0
    i0x = (z0x + s1x - k1x + UP_X + off_x * UP_X) // UP_X - off_x
    iy = i0y + tl.arange(0, BI_Y)
    ix = i0x + tl.arange(0, BI_X)
    zy = z0y + tl.arange(0, BZ_Y)
    zx = z0x + tl.arange(0, BZ_X)
    oy = o0y + tl.arange(0, BO_Y)
    ox = o0x + tl.arange(0, BO_X)

    x_in = (iy[:, None] >= 0) & (iy[:, None] < in_h) & (ix[None, :] >= 0) & (ix[None, :] < in_w)
    xt = tl.load(x_ptr + n * sxn + c * sxc + iy[:, None] * sxh + ix[None, :] * sxw, mask=x_in, other=0).to(tl.float32)
    if HAS_BIAS:
        xt = tl.where(x_in, xt + tl.load(b_ptr + c).to(tl.float32), 0.0)
    xt = xt.to(dt)

    # Up-FIR: u = sum_r A_h,r @ (x @ A_w,r), A[i, j] = g1[j - i * up + s1].
    u = tl.zeros([BZ_Y, BZ_X], dtype=tl.float32)
    kx = zx[None, :] - ix[:, None] * UP_X + s1x  # [BI_X, BZ_X]
    ky = zy[:, None] - iy[None, :] * UP_Y + s1y  # [BZ_Y, BI_Y]
    for r in range(0, r1):
        a_w = tl.load(g1x_ptr + r * k1x + kx, mask=(kx >= 0) & (kx < k1x), other=0).to(dt)
        t = tl.dot(xt, a_w, input_precision=PREC).to(dt)
        a_h = tl.load(g1y_ptr + r * k1y + ky, mask=(ky >= 0) & (ky < k1y), other=0).to(dt)
        u = tl.dot(a_h, t, acc=u, input_precision=PREC)

    m_off = plane.to(tl.int64) * z_h * z_w + zy[:, None] * z_w + zx[None, :]
    z_in = (zy[:, None] >= 0) & (zy[:, None] < z_h) & (zx[None, :] >= 0) & (zx[None, :] < z_w)
    if MODE == 2:  # the linear map of the backward pass: slopes from the stored codes, 0 outside the intermediate
        code = tl.load(m_ptr + m_off, mask=z_in, other=0).to(tl.int32)
        factor = tl.where((code & 2) != 0, 0.0, tl.where((code & 1) != 0, gain * slope, gain))
        v = tl.where(z_in, u * factor, 0.0)
    else:
        negative = u <= 0  # leaky ReLU's slope applies (the reference's gradient takes it at 0 too)
        v = tl.where(negative, u * slope, u) * gain
        code = negative.to(tl.int32)
        if HAS_CLAMP:
            code += ((v > clamp) | (v < -clamp)).to(tl.int32) * 2
            v = tl.where(v > clamp, clamp, tl.where(v < -clamp, -clamp, v))
        if MODE == 1:  # each intermediate sample's code is written by the one tile whose own range holds it
            end_y = (o0y + so_y) * DN_Y  # the last tile owns the rest
            end_y += (ty == tiles // tiles_w - 1).to(tl.int32) * (z_h - end_y)
            end_x = (o0x + so_x) * DN_X
            end_x += (tx == tiles_w - 1).to(tl.int32) * (z_w - end_x)
            own_y = (zy >= o0y * DN_Y) & (zy < end_y)
            own_x = (zx >= o0x * DN_X) & (zx < end_x)
            tl.store(m_ptr + m_off, code.to(tl.uint8), mask=z_in & own_y[:, None] & own_x[None, :])
    v = v.to(dt)

    # Down-FIR: y = sum_r B_h,r @ (v @ B_w,r), B[j, o] = g2[o * down - j + s2].
    acc = tl.zeros([BO_Y, BO_X], dtype=tl.float32)
    jx = ox[None, :] * DN_X - zx[:, None] + s2x  # [BZ_X, BO_X]
    jy = oy[:, None] * DN_Y - zy[None, :] + s2y  # [BO_Y, BZ_Y]
    for r in range(0, r2):
        b_w = tl.load(g2x_ptr + r * k2x + jx, mask=(jx >= 0) & (jx < k2x), other=0).to(dt)
        t2 = tl.dot(v, b_w, input_precision=PREC).to(dt)
        b_h = tl.load(g2y_ptr + r * k2y + jy, mask=(jy >= 0) & (jy < k2y), other=0).to(dt)
        acc = tl.dot(b_h, t2, acc=acc, input_precision=PREC)

    out = (oy[:, None] < o0y + so_y) & (oy[:, None] < out_h) & (ox[None, :] < o0x + so_x) & (ox[None, :] < out_w)
    y_off = plane.to(tl.int64) * out_h * out_w + oy[:, None] * out_w + ox[None, :]
    tl.store(y_ptr + y_off, acc.to(dt), mask=out)


@functools.cache
def axis_tiles(up: int, k1: int, down: int, k2: int) -> tuple[int, int, int, int]:
    """(outputs per tile, input block, intermediate block, output block) along one axis, for up-FIR (up, k1 taps)
    then down-FIR (down, k2 taps): the intermediate block (32, 64 or, for long filters, 128) with the fewest
    multiply-adds per output (blocks are powers of two of at least 16, as tl.dot needs)."""
    best = None
    for bz in (32, 64, 128):
        so = (bz - k2) // down + 1
        if so < 1:
            continue
        bo, bi = next_pow2(so), next_pow2((bz + k1 - 2) // up + 1)
        cost = (bi * bz * (bi + bz) + bz * bo * (bz + bo)) / so**2
        if bz == 128:
            cost *= 1.5  # register pressure: only when shorter blocks hold very few outputs
        if best is None or cost < best[0]:
            best = (cost, (so, bi, bz, bo))
    assert best is not None, (up, k1, down, k2)
    return best[1]


def _offset(first: int, up: int) -> int:
    """Multiple of `up` (in units of up) that keeps the kernel's first-input numerator, `first` at tile 0 and growing
    with the tile index, non-negative, so that its integer division has no sign ambiguity."""
    return max(0, (-first + up - 1) // up)


def _fake(x: torch.Tensor, b: torch.Tensor | None, g1y: torch.Tensor, g1x: torch.Tensor, g2y: torch.Tensor, g2x: torch.Tensor,
          params: Sequence[int], slope: float, gain: float, clamp: float, write_codes: bool) -> tuple[torch.Tensor, torch.Tensor]:
    z_h, z_w, out_h, out_w = params[8:12]
    y = x.new_empty([x.shape[0], x.shape[1], out_h, out_w])
    codes = x.new_empty([x.shape[0] * x.shape[1], z_h, z_w] if write_codes else [0], dtype=torch.uint8)
    return y, codes


def _launch(x: torch.Tensor, b: torch.Tensor | None, codes: torch.Tensor | None, g1y: torch.Tensor, g1x: torch.Tensor,
            g2y: torch.Tensor, g2x: torch.Tensor, params: Sequence[int], slope: float, gain: float, clamp: float,
            mode: int) -> torch.Tensor:
    up_y, up_x, s1y, s1x, dn_y, dn_x, s2y, s2x, z_h, z_w, out_h, out_w = params
    n, c, in_h, in_w = x.shape
    (r1, k1y), k1x, (r2, k2y), k2x = g1y.shape, g1x.shape[1], g2y.shape, g2x.shape[1]
    so_y, bi_y, bz_y, bo_y = axis_tiles(up_y, k1y, dn_y, k2y)
    so_x, bi_x, bz_x, bo_x = axis_tiles(up_x, k1x, dn_x, k2x)
    y = torch.empty([n, c, out_h, out_w], dtype=x.dtype, device=x.device)
    tiles_w = triton.cdiv(out_w, so_x)
    tiles = triton.cdiv(out_h, so_y) * tiles_w
    off_y = _offset(s2y - k2y + 1 + s1y - k1y + up_y, up_y)
    off_x = _offset(s2x - k2x + 1 + s1x - k1x + up_x, up_x)
    _flrelu_kernel[grid_1d(n * c * tiles)](
        x, b if b is not None else x, g1y, g1x, g2y, g2x, y, codes if codes is not None else y,
        c, in_h, in_w, z_h, z_w, out_h, out_w, tiles_w, tiles, *x.stride(), s1y, s1x, s2y, s2x, off_y, off_x,
        r1, r2, k1y, k1x, k2y, k2x, so_y, so_x, slope, gain, clamp,
        UP_Y=up_y, UP_X=up_x, DN_Y=dn_y, DN_X=dn_x, BI_Y=bi_y, BI_X=bi_x, BZ_Y=bz_y, BZ_X=bz_x, BO_Y=bo_y, BO_X=bo_x,
        MODE=mode, HAS_BIAS=b is not None, HAS_CLAMP=clamp >= 0, PREC="ieee" if x.dtype == torch.float32 else "tf32",
        num_warps=8 if max(bz_y, bz_x) > 64 else 4)
    return y


@define("filtered_lrelu", fake=_fake)
def _flrelu_op(x: torch.Tensor, b: torch.Tensor | None, g1y: torch.Tensor, g1x: torch.Tensor, g2y: torch.Tensor,
               g2x: torch.Tensor, params: Sequence[int], slope: float, gain: float, clamp: float,
               write_codes: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward: (y, codes); params = [up_y, up_x, s1y, s1x, down_y, down_x, s2y, s2x, z_h, z_w, out_h, out_w];
    g*: [rank, taps] float32 taps in convolution order; clamp < 0 means none; codes empty unless write_codes."""
    n, c = x.shape[:2]
    z_h, z_w = params[8], params[9]
    codes = torch.zeros([n * c, z_h, z_w] if write_codes else [0], dtype=torch.uint8, device=x.device)
    y = _launch(x, b, codes if write_codes else None, g1y, g1x, g2y, g2x, params, slope, gain, clamp,
                MODE_ACT_CODES if write_codes else MODE_ACT)
    return y, codes


def _fake_masked(x: torch.Tensor, codes: torch.Tensor, g1y: torch.Tensor, g1x: torch.Tensor, g2y: torch.Tensor,
                 g2x: torch.Tensor, params: Sequence[int], slope: float, gain: float) -> torch.Tensor:
    return x.new_empty([x.shape[0], x.shape[1], params[10], params[11]])


@define("filtered_lrelu_masked", fake=_fake_masked)
def _flrelu_masked_op(x: torch.Tensor, codes: torch.Tensor, g1y: torch.Tensor, g1x: torch.Tensor, g2y: torch.Tensor,
                      g2x: torch.Tensor, params: Sequence[int], slope: float, gain: float) -> torch.Tensor:
    """The linear map FIR2(slopes(codes) * FIR1(x)) of the backward passes (same params layout as the forward)."""
    return _launch(x, None, codes, g1y, g1x, g2y, g2x, params, slope, gain, -1.0, MODE_MASKED)


def transpose_params(params: Sequence[int], g1y: torch.Tensor, g1x: torch.Tensor, g2y: torch.Tensor, g2x: torch.Tensor,
                     in_size: Sequence[int]) -> list[int]:
    """Params of the transposed map (stage 2 transposed first, then stage 1), whose output has size `in_size`."""
    up_y, up_x, s1y, s1x, dn_y, dn_x, s2y, s2x, z_h, z_w, _, _ = params
    return [dn_y, dn_x, g2y.shape[1] - 1 - s2y, g2x.shape[1] - 1 - s2x, up_y, up_x, g1y.shape[1] - 1 - s1y,
            g1x.shape[1] - 1 - s1x, z_h, z_w, in_size[0], in_size[1]]


def _flip(g: torch.Tensor) -> torch.Tensor:
    return g.flip(1)


def _transposed(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    codes, g1y, g1x, g2y, g2x = ctx.saved_tensors
    params = transpose_params(ctx.params, g1y, g1x, g2y, g2x, ctx.in_size)
    return _flrelu_masked_op(grad, codes, _flip(g2y), _flip(g2x), _flip(g1y), _flip(g1x), params,
                             ctx.slope, ctx.gain)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, b, g1y, g1x, g2y, g2x, params, slope, gain, clamp, write_codes = inputs
    ctx.save_for_backward(output[1], g1y, g1x, g2y, g2x)
    ctx.params, ctx.slope, ctx.gain, ctx.in_size = list(params), slope, gain, tuple(x.shape[2:])
    ctx.has_bias, ctx.write_codes = b is not None, write_codes


def _backward(ctx: Any, gy: torch.Tensor, gcodes: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    if not ctx.write_codes:
        raise RuntimeError("filtered_lrelu: the forward pass ran without storing the codes its backward pass needs")
    gx = _transposed(ctx, gy)
    gb = gx.sum([0, 2, 3]) if ctx.has_bias and ctx.needs_input_grad[1] else None
    return gx, gb, None, None, None, None, None, None, None, None, None


def _setup_masked(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, codes, g1y, g1x, g2y, g2x, params, slope, gain = inputs
    ctx.save_for_backward(codes, g1y, g1x, g2y, g2x)
    ctx.params, ctx.slope, ctx.gain, ctx.in_size = list(params), slope, gain, tuple(x.shape[2:])


def _backward_masked(ctx: Any, gy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    return _transposed(ctx, gy), None, None, None, None, None, None, None, None


_flrelu_op.register_autograd(_backward, setup_context=_setup)
_flrelu_masked_op.register_autograd(_backward_masked, setup_context=_setup_masked)


def _factors(f: torch.Tensor | None, flip: bool, gain: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(y taps [rank, ky], x taps [rank, kx]), float32, with f * gain = sum_r outer(y_r, x_r) in convolution order:
    a 1-D filter is one separable term (sqrt(gain) per axis), a 2-D one its SVD's terms (the negligible ones
    dropped, except while compiling, where the rank must not depend on values)."""
    if f is None:
        one = torch.full([1, 1], gain**0.5, dtype=torch.float32, device=device)
        return one, one

    def make() -> tuple[torch.Tensor, torch.Tensor]:
        g = f.to(device=device, dtype=torch.float32)
        if flip:
            g = g.flip(list(range(g.ndim)))
        if g.ndim == 1:
            t = (g * gain**0.5).reshape(1, -1).contiguous()
            return t, t
        u, s, vh = torch.linalg.svd(g.double() * gain)
        rank = s.numel()
        if not torch.compiler.is_compiling():
            rank = max(1, int((s > s[0] * 1e-9).sum()))
        root = s[:rank].sqrt()
        return ((u[:, :rank] * root).t().float().contiguous(), (vh[:rank] * root[:, None]).float().contiguous())

    return tensor_cache(f, ("triton.filtered_lrelu", flip, gain, device), make)


def filtered_lrelu_triton(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None,
                          up: int, down: int, padding: tuple[int, int, int, int], gain: float, slope: float,
                          clamp: float | None, flip_filter: bool) -> torch.Tensor:
    """`stylegan.ops.filtered_lrelu` (validated arguments; filters that need no gradient) on the fused kernel."""
    px0, px1, py0, py1 = padding
    g1y, g1x = _factors(fu, flip_filter, float(up * up), x.device)
    g2y, g2x = _factors(fd, flip_filter, 1.0, x.device)
    k1y, k1x, k2y, k2x = g1y.shape[1], g1x.shape[1], g2y.shape[1], g2x.shape[1]
    z_h = x.shape[2] * up + py0 + py1 - k1y + 1
    z_w = x.shape[3] * up + px0 + px1 - k1x + 1
    params = [up, up, k1y - 1 - py0, k1x - 1 - px0, down, down, k2y - 1, k2x - 1, z_h, z_w,
              (z_h - k2y) // down + 1, (z_w - k2x) // down + 1]
    write_codes = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    y, _ = _flrelu_op(x, b, g1y, g1x, g2y, g2x, params, float(slope), float(gain),
                      -1.0 if clamp is None else float(clamp), write_codes)
    return y

"""bias + linear/relu/lrelu + gain + clamp as one Triton pass forward and one pass backward.

The gradient is read off the output y, as NVIDIA's CUDA kernel does: y > 0 exactly where x + b > 0 (gain > 0,
alpha >= 0), and the clamp passes the gradient where |y| is below the clamp rounded to y's dtype. (NVIDIA's kernel
compares with the unrounded clamp, so in float16 it passes the gradient of clamped outputs whenever the clamp is
not representable, e.g. 256 * sqrt(0.5) in StyleGAN2's residual discriminator blocks; the reference path and this
kernel do not.) It is the incoming gradient times a factor that
is piecewise constant in y, so the gradient op's own backward is the same kernel again (second order for R1 and
path length) and its derivative with respect to y is zero.
"""


from typing import Any

import torch
import triton
import triton.language as tl

from .library import define, grid_1d

ACT_CODES = {"linear": 0, "relu": 1, "lrelu": 2}
_BLOCK = 1024


@triton.jit
def _bias_act_kernel(x_ptr, b_ptr, y_ptr, numel, stride_c, channels, alpha, gain, clamp,
                     HAS_BIAS: tl.constexpr, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < numel
    v = tl.load(x_ptr + offs, mask=inside, other=0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(b_ptr + (offs // stride_c) % channels, mask=inside, other=0).to(tl.float32)
    if ACT == 1:
        v = tl.where(v > 0, v, v * 0)  # v * 0 keeps NaN
    if ACT == 2:
        v = tl.where(v > 0, v, v * alpha)
    v = v * gain
    if HAS_CLAMP:
        v = tl.where(v > clamp, clamp, tl.where(v < -clamp, -clamp, v))
    tl.store(y_ptr + offs, v.to(y_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _bias_act_grad_kernel(g_ptr, y_ptr, out_ptr, numel, alpha, gain, clamp,
                          ACT: tl.constexpr, HAS_CLAMP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < numel
    g = tl.load(g_ptr + offs, mask=inside, other=0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=inside, other=0).to(tl.float32)
    if HAS_CLAMP:  # clamp: rounded to y's dtype by the host, the value clamped outputs hold
        g = tl.where(tl.abs(y) < clamp, g, 0.0)
    if ACT == 1:
        g = tl.where(y > 0, g, 0.0)
    if ACT == 2:
        g = tl.where(y > 0, g, g * alpha)
    g = g * gain
    tl.store(out_ptr + offs, g.to(out_ptr.dtype.element_ty), mask=inside)


def _dense(x: torch.Tensor) -> torch.Tensor:
    """x itself when its elements are packed densely in some dimension order (contiguous, channels-last), else a
    contiguous copy: the kernels walk memory linearly."""
    if x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


@define("bias_act", fake=lambda x, b, dim, act, alpha, gain, clamp: torch.empty_like(x))
def _bias_act_op(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: int, alpha: float, gain: float,
                 clamp: float) -> torch.Tensor:
    """y = clamp(act(x + b) * gain); b along `dim`; clamp < 0 means none; x densely packed."""
    y = torch.empty_like(x)
    n = x.numel()
    _bias_act_kernel[grid_1d(triton.cdiv(n, _BLOCK))](
        x, b if b is not None else x, y, n, max(x.stride(dim), 1), x.shape[dim], alpha, gain, clamp,
        HAS_BIAS=b is not None, ACT=act, HAS_CLAMP=clamp >= 0, BLOCK=_BLOCK)
    return y


@define("bias_act_grad", fake=lambda g, y, act, alpha, gain, clamp: torch.empty_like(y))
def _bias_act_grad_op(g: torch.Tensor, y: torch.Tensor, act: int, alpha: float, gain: float, clamp: float) -> torch.Tensor:
    """d(loss)/d(x + b) from d(loss)/dy and the output y (same layout)."""
    out = torch.empty_like(y)
    n = y.numel()
    clamp_y = float(torch.tensor(clamp, dtype=torch.float64).to(y.dtype)) if clamp >= 0 else clamp
    _bias_act_grad_kernel[grid_1d(triton.cdiv(n, _BLOCK))](
        g, y, out, n, alpha, gain, clamp_y, ACT=act, HAS_CLAMP=clamp >= 0, BLOCK=_BLOCK)
    return out


def _like(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g with y's dtype and memory layout (the kernels index both with one offset)."""
    if g.dtype == y.dtype and g.stride() == y.stride():
        return g
    return torch.empty_like(y).copy_(g)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, b, dim, act, alpha, gain, clamp = inputs
    ctx.save_for_backward(output)
    ctx.args = (act, alpha, gain, clamp)
    ctx.dim = dim
    ctx.has_bias = b is not None


def _backward(ctx: Any, gy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    (y,) = ctx.saved_tensors
    g = _bias_act_grad_op(_like(gy, y), y, *ctx.args)
    gb = None
    if ctx.has_bias and ctx.needs_input_grad[1]:
        gb = g.sum([i for i in range(g.ndim) if i != ctx.dim])
    return g, gb, None, None, None, None, None


def _setup_grad(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    g, y, act, alpha, gain, clamp = inputs
    ctx.save_for_backward(y)
    ctx.args = (act, alpha, gain, clamp)


def _backward_grad(ctx: Any, gg: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    (y,) = ctx.saved_tensors
    return _bias_act_grad_op(_like(gg, y), y, *ctx.args), None, None, None, None, None


_bias_act_op.register_autograd(_backward, setup_context=_setup)
_bias_act_grad_op.register_autograd(_backward_grad, setup_context=_setup_grad)


def bias_act_triton(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
                    clamp: float | None) -> torch.Tensor:
    """`stylegan.ops.bias_act` for act in linear/relu/lrelu, gain > 0, alpha >= 0 (checked by the caller)."""
    return _bias_act_op(_dense(x), b, dim, ACT_CODES[act], float(alpha), float(gain), -1.0 if clamp is None else float(clamp))

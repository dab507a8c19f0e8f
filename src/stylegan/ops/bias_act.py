"""Fused bias + activation + gain + clamp (the official `bias_act` op), in pure PyTorch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import backend
from .fastpath import fast_paths_enabled, under_transform


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


_SQRT2 = math.sqrt(2)

ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, _SQRT2),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, _SQRT2),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, _SQRT2),
}


def activation_gain(act: str) -> float:
    """Default gain of `act` (√2 for relu-like activations, 1 otherwise)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[act].def_gain


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp); `b` broadcasts along `dim`."""
    spec = ACTIVATIONS.get(act)
    if spec is None:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"bias_act: dim {dim} out of range for a {x.ndim}-d tensor")
    dim %= x.ndim
    if clamp is not None and clamp < 0:
        raise ValueError(f"bias_act: clamp must be >= 0 or None, got {clamp}")
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias_act: bias of shape {list(b.shape)} does not match dim {dim} of x {list(x.shape)}")
    if fast_paths_enabled() and act in _FAST_ACTS and gain > 0 and alpha >= 0:
        if backend.use_triton(x) and not under_transform(x):
            return backend.triton_kernels()[0].bias_act_triton(x, b, dim, act, alpha, gain, clamp)
        if not (torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))):
            return _bias_act_inplace(x, b, dim, act, alpha, gain, clamp)
        if x.numel() >= _FAST_GRAD_MIN_NUMEL and not under_transform(x):
            return _BiasAct.apply(x, b, dim, act, alpha, gain, clamp)
    return _bias_act_ref(x, b, dim, spec, alpha, gain, clamp)


def _bias_act_ref(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, spec: Activation, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    """Reference path: one plain differentiable PyTorch call per step, as the official `_bias_act_ref`."""
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------- fast path
# Activations whose derivative can be read off the output y (their sign is the input's sign, the slope
# is piecewise constant), so the backward pass needs only y — as in the official CUDA kernel.
_FAST_ACTS = ("linear", "relu", "lrelu")
# Below this size the custom autograd function costs more Python overhead than it saves.
_FAST_GRAD_MIN_NUMEL = 1 << 14


def _bias_act_inplace(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    """Same arithmetic as the reference (bit-exact), but one new tensor and in-place steps after it."""
    do_clamp = clamp is not None and clamp >= 0
    if b is not None:
        y = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    elif act != "linear" or gain != 1 or do_clamp:
        y = x.clone()
    else:
        return x
    if act == "relu":
        y.relu_()
    elif act == "lrelu":
        torch.nn.functional.leaky_relu_(y, alpha)
    if gain != 1:
        y.mul_(gain)
    if do_clamp:
        y.clamp_(-clamp, clamp)
    return y


class _BiasAct(torch.autograd.Function):
    """bias + linear/relu/lrelu + gain + clamp, saving only the output for backward.

    The derivative is computed from y: y > 0 exactly where x + b > 0 (gain > 0, alpha >= 0), and
    |y| < clamp where the clamp passes the gradient (at |x| == clamp exactly the gradient is taken as 0,
    as in the official CUDA kernel; the reference autograd path passes it). The backward pass is made of
    differentiable ops, so double backward (R1 / path-length regularisation) works.
    """

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # type: ignore[override]
        y = _bias_act_inplace(x, b, dim, act, alpha, gain, clamp)
        if y is x:
            y = x.clone()
        ctx.dim, ctx.act, ctx.alpha, ctx.gain = dim, act, alpha, gain
        ctx.clamp = clamp if clamp is not None and clamp >= 0 else None
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        g = _bias_act_grad(gy, y, ctx.act, ctx.alpha, ctx.gain, ctx.clamp)
        gx = g if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = g.sum([i for i in range(g.ndim) if i != ctx.dim])
        return gx, gb, None, None, None, None, None


def _bias_act_grad(gy: torch.Tensor, y: torch.Tensor, act: str, alpha: float, gain: float, clamp: float | None) -> torch.Tensor:
    """d(loss)/d(x + b) from d(loss)/dy and the saved output y.

    Without a graph of the backward pass being recorded (no double backward), every step after the
    first writes into the first step's result: one new tensor in all. Otherwise plain differentiable
    ops, so second-order gradients flow (the slopes are piecewise constant in y).
    """
    aten = torch.ops.aten
    if torch.is_grad_enabled():
        g = gy
        if clamp is not None:
            g = aten.hardtanh_backward(g, y, -clamp, clamp)  # 0 where |y| >= clamp
        if act == "relu":
            g = aten.threshold_backward(g, y, 0)  # 0 where y <= 0
        elif act == "lrelu":
            g = aten.leaky_relu_backward(g, y, alpha, True)  # alpha * g where y <= 0
        return g * gain if gain != 1 else g
    g = None  # our own buffer, once allocated
    if clamp is not None:
        g = aten.hardtanh_backward(gy, y, -clamp, clamp)
    if act == "relu":
        g = aten.threshold_backward(gy, y, 0) if g is None else aten.threshold_backward.grad_input(g, y, 0, grad_input=g)
    elif act == "lrelu":
        if g is None:
            g = aten.leaky_relu_backward(gy, y, alpha, True)
        else:
            g = aten.leaky_relu_backward.grad_input(g, y, alpha, True, grad_input=g)
    if gain != 1:
        g = gy * gain if g is None else g.mul_(gain)
    return gy if g is None else g

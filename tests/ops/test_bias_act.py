"""bias_act against explicit per-element math (numpy, float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylegan.ops import ACTIVATIONS, activation_gain, bias_act

SQRT2 = math.sqrt(2)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _np_act(x: np.ndarray, act: str, alpha: float) -> np.ndarray:
    """Activations written from their textbook definitions."""
    if act == "linear":
        return x.copy()
    if act == "relu":
        return np.where(x > 0, x, 0.0)
    if act == "lrelu":
        return np.where(x >= 0, x, alpha * x)
    if act == "tanh":
        return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if act == "elu":
        return np.where(x > 0, x, np.exp(x) - 1.0)
    if act == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1.0))
    if act == "softplus":
        return np.log1p(np.exp(x))
    if act == "swish":
        return x / (1.0 + np.exp(-x))
    raise AssertionError(act)


# Defaults as published with the official op: (alpha, gain).
DEFAULTS = {
    "linear": (0.0, 1.0),
    "relu": (0.0, SQRT2),
    "lrelu": (0.2, SQRT2),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, SQRT2),
}


def naive_bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    x = np.asarray(x, dtype=np.float64).copy()
    def_alpha, def_gain = DEFAULTS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        # explicit loop over the bias axis
        for i in range(x.shape[dim]):
            idx = [slice(None)] * x.ndim
            idx[dim] = i
            x[tuple(idx)] += b[i]
    y = _np_act(x, act, alpha) * gain
    if clamp is not None and clamp >= 0:
        y = np.minimum(np.maximum(y, -clamp), clamp)
    return y


def _inputs(shape=(2, 3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 2


def test_activation_table_is_complete():
    assert set(ACTIVATIONS) == set(DEFAULTS)


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_default_gain(act):
    assert activation_gain(act) == pytest.approx(DEFAULTS[act][1], abs=0)


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_every_activation_with_defaults(act):
    x = _inputs()
    b = torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64)
    y = bias_act(x, b, act=act)
    np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), b.numpy(), act=act), rtol=1e-12, atol=1e-12)
    # float32 path too
    y32 = bias_act(x.float(), b.float(), act=act)
    assert y32.dtype == torch.float32
    ref32 = naive_bias_act(x.float().numpy(), b.float().numpy(), act=act)
    np.testing.assert_allclose(y32.double().numpy(), ref32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_every_activation_without_bias(act):
    x = _inputs(seed=1)
    np.testing.assert_allclose(bias_act(x, act=act).numpy(), naive_bias_act(x.numpy(), act=act), rtol=1e-12, atol=1e-12)


def test_lrelu_known_values():
    x = torch.tensor([[-2.0, -0.5, 0.0, 1.5]], dtype=torch.float64)
    y = bias_act(x, act="lrelu", dim=1)
    expected = torch.tensor([[-0.4, -0.1, 0.0, 1.5]], dtype=torch.float64) * SQRT2
    torch.testing.assert_close(y, expected, rtol=1e-14, atol=1e-14)


def test_lrelu_custom_alpha_and_gain():
    x = _inputs(seed=2)
    b = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    y = bias_act(x, b, act="lrelu", alpha=0.05, gain=3.0)
    np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), b.numpy(), act="lrelu", alpha=0.05, gain=3.0), rtol=1e-12)
    # alpha really changes the negative slope
    assert not torch.allclose(y, bias_act(x, b, act="lrelu", gain=3.0))


@pytest.mark.parametrize("act", ["linear", "relu", "tanh", "swish", "elu"])
def test_custom_gain(act):
    x = _inputs(seed=3)
    y = bias_act(x, act=act, gain=0.7)
    np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), act=act, gain=0.7), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ["linear", "lrelu", "relu", "swish"])
def test_clamp_after_gain(act):
    x = _inputs(seed=4)
    b = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    y = bias_act(x, b, act=act, gain=2.0, clamp=0.5)
    ref = naive_bias_act(x.numpy(), b.numpy(), act=act, gain=2.0, clamp=0.5)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert y.abs().max().item() == pytest.approx(0.5)


def test_clamp_is_applied_after_gain_known_values():
    x = torch.tensor([[0.2, 0.4, -0.4, -3.0]], dtype=torch.float64)
    y = bias_act(x, act="linear", gain=2.0, clamp=0.5)
    # pre-gain clamping would give [0.4, 0.8, -0.8, -1.0]
    torch.testing.assert_close(y, torch.tensor([[0.4, 0.5, -0.5, -0.5]], dtype=torch.float64))


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_clamp_none_does_nothing_and_negative_is_an_error(act):
    x = _inputs(seed=5) * 10
    ref = naive_bias_act(x.numpy(), act=act, gain=3.0)
    # rtol 1e-8: torch's softplus returns x itself above x = 20 (error exp(-x))
    np.testing.assert_allclose(bias_act(x, act=act, gain=3.0, clamp=None).numpy(), ref, rtol=1e-8, atol=1e-12)
    assert np.abs(ref).max() > 1.5
    with pytest.raises(ValueError, match="clamp must be >= 0"):
        bias_act(x, act=act, gain=3.0, clamp=-1)


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_clamp_zero_gives_zero(act):
    x = _inputs(seed=6)
    assert torch.count_nonzero(bias_act(x, act=act, clamp=0)) == 0
    assert torch.count_nonzero(bias_act(x.requires_grad_(True), act=act, clamp=0)) == 0


@pytest.mark.parametrize("dim", [0, 1, 2, 3])
def test_bias_broadcast_along_any_dim(dim):
    x = _inputs(shape=(2, 3, 4, 5), seed=7)
    b = torch.arange(x.shape[dim], dtype=torch.float64) * 0.5 - 1.0
    y = bias_act(x, b, dim=dim, act="lrelu")
    np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), b.numpy(), dim=dim, act="lrelu"), rtol=1e-12, atol=1e-12)
    # an explicit hand-written slice check
    idx = [0] * 4
    idx[dim] = x.shape[dim] - 1
    v = (x[tuple(idx)] + b[-1]).item()
    assert y[tuple(idx)].item() == pytest.approx((v if v >= 0 else 0.2 * v) * SQRT2, rel=1e-12)


def test_bias_on_2d_input():
    """Fully-connected activations are [N, C] with the bias along dim 1."""
    x = _inputs(shape=(4, 6), seed=8)
    b = torch.linspace(-1, 1, 6, dtype=torch.float64)
    y = bias_act(x, b, act="lrelu")
    np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), b.numpy(), act="lrelu"), rtol=1e-12, atol=1e-12)


def test_bias_shape_mismatch_is_rejected():
    x = _inputs()
    with pytest.raises(ValueError, match="does not match"):
        bias_act(x, torch.zeros(4, dtype=torch.float64), dim=1)
    with pytest.raises(ValueError, match="does not match"):
        bias_act(x, torch.zeros(1, 3, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu", "tanh"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_does_not_modify_inputs(act, with_bias, requires_grad):
    x = _inputs().requires_grad_(requires_grad)
    b = torch.ones(3, dtype=torch.float64) if with_bias else None
    x0 = x.detach().clone()
    for kw in (dict(), dict(gain=2.0), dict(clamp=0.1), dict(gain=0.5, clamp=0.2, alpha=0.3)):
        bias_act(x, b, act=act, **kw)
        assert torch.equal(x.detach(), x0)
        if b is not None:
            assert torch.equal(b, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("act", sorted(DEFAULTS))
@pytest.mark.parametrize("dim", [1, 3])
def test_float32_with_clamp_gain_and_dim(act, dim):
    x = _inputs(shape=(2, 3, 4, 5), seed=13).float()
    b = torch.linspace(-1, 1, x.shape[dim])
    kw = dict(dim=dim, act=act, gain=1.7, clamp=0.9)
    if act == "lrelu":
        kw["alpha"] = 0.3
    y = bias_act(x, b, **kw)
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.double().numpy(), naive_bias_act(x.numpy(), b.numpy(), **kw), rtol=1e-5, atol=1e-6)


def test_negative_gain():
    x = _inputs(seed=14)
    b = torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64)
    for act in ("relu", "lrelu", "linear"):
        y = bias_act(x, b, act=act, gain=-1.5, clamp=1.0)
        np.testing.assert_allclose(y.numpy(), naive_bias_act(x.numpy(), b.numpy(), act=act, gain=-1.5, clamp=1.0), rtol=1e-12)


@pytest.mark.parametrize("bad", ["leaky", "RELU", "", "gelu"])
def test_unknown_activation_raises_value_error(bad):
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(torch.zeros(1, 1), act=bad)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_gain(bad)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"])
def test_gradcheck_smooth(act):
    g = torch.Generator().manual_seed(10)
    x = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: bias_act(x, b, act=act, gain=1.3), (x, b))


@pytest.mark.parametrize("act", ["relu", "lrelu"])
def test_gradcheck_piecewise_linear_away_from_kink(act):
    g = torch.Generator().manual_seed(11)
    b = torch.tensor([0.3, -0.2], dtype=torch.float64)
    z = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)
    z = z.sign() * (z.abs() + 0.1)  # |x + b| >= 0.1
    x = (z - b.reshape(1, 2, 1, 1)).requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, b: bias_act(x, b, act=act), (x, b))


def test_gradcheck_with_clamp_away_from_boundary():
    # lrelu*sqrt(2) then clamp 1: values chosen away from the kink (0) and the clamp points (0.707, -3.54)
    x = torch.tensor([-5.0, -2.0, -0.5, 0.3, 0.5, 1.0, 2.0, -0.2, 3.0], dtype=torch.float64)
    x = x.reshape(1, 1, 3, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: bias_act(x, act="lrelu", clamp=1.0), (x,))
    y = bias_act(x, act="lrelu", clamp=1.0)
    (gx,) = torch.autograd.grad(y.sum(), x)
    clamped = y.detach().abs() == 1.0
    assert clamped.sum() == 4
    assert torch.all(gx[clamped] == 0)
    assert torch.all(gx[~clamped] != 0)


def _analytic_grads(x, b, dim, act, alpha, gain, clamp, gy):
    """d/dx and d/db of clamp(act(x + b) * gain) written out by hand (piecewise-linear activations)."""
    shape = [-1 if i == dim else 1 for i in range(x.ndim)]
    v = x + b.reshape(shape)
    slope = {"linear": torch.ones_like(v), "relu": (v > 0).to(v.dtype), "lrelu": torch.where(v > 0, 1.0, alpha).to(v.dtype)}[act]
    pre = {"linear": v, "relu": v.clamp(min=0), "lrelu": torch.where(v > 0, v, alpha * v)}[act] * gain
    passes = (pre.abs() < clamp).to(v.dtype) if clamp is not None else torch.ones_like(v)
    gx = gy * slope * gain * passes
    gb = gx.sum(dim=[i for i in range(x.ndim) if i != dim])
    return gx, gb


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,dim", [((1, 2, 3, 3), 1), ((2, 8, 32, 32), 1), ((2, 8, 32, 32), 2)])
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_gradients_vs_analytic(act, dtype, shape, dim, clamp):
    """Small and large (>= 2**14 elements) inputs: implementations may switch to a custom backward."""
    g = torch.Generator().manual_seed(15)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    b = torch.randn(shape[dim], generator=g, dtype=torch.float64) * 0.5
    gy = torch.randn(shape, generator=g, dtype=torch.float64)
    gain = 1.7
    gx_ref, gb_ref = _analytic_grads(x, b, dim, act, 0.25, gain, clamp, gy)
    xt = x.to(dtype).clone().requires_grad_(True)
    bt = b.to(dtype).clone().requires_grad_(True)
    y = bias_act(xt, bt, dim=dim, act=act, alpha=0.25, gain=gain, clamp=clamp)
    np.testing.assert_allclose(
        y.detach().double().numpy(),
        naive_bias_act(x.to(dtype).numpy(), b.to(dtype).numpy(), dim=dim, act=act, alpha=0.25, gain=gain, clamp=clamp),
        rtol=1e-6,
        atol=1e-6,
    )
    gx, gb = torch.autograd.grad((y * gy.to(dtype)).sum(), (xt, bt))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(gx.double(), gx_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(gb.double(), gb_ref, rtol=tol, atol=tol * 100)


@pytest.mark.parametrize("act", ["lrelu", "linear"])
def test_double_backward_large(act):
    """R1-style double backward through bias_act on a large input (second derivative of a
    piecewise-linear activation is 0, so grad of the gradient w.r.t. x is 0 and w.r.t. gy is the slope)."""
    g = torch.Generator().manual_seed(16)
    x = torch.randn(2, 8, 32, 32, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, generator=g, dtype=torch.float64)
    y = bias_act(x, b, act=act)
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    v = (x + b.reshape(1, -1, 1, 1)).detach()
    slope = torch.where(v > 0, 1.0, 0.2 if act == "lrelu" else 1.0).to(v.dtype) * activation_gain(act)
    torch.testing.assert_close(gx, slope)
    (ggx,) = torch.autograd.grad((gx * x).sum(), x)  # d/dx sum(slope(x) * x) = slope (slope is piecewise const)
    torch.testing.assert_close(ggx, slope)

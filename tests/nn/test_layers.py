"""Equalized-learning-rate layers against their defining formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.nn import Conv2dLayer, FullyConnectedLayer
from stylegan.ops import conv2d_resample, setup_filter

SQRT2 = math.sqrt(2)


def _lrelu(v, gain=SQRT2, alpha=0.2):
    return torch.where(v >= 0, v, alpha * v) * gain


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


def _rand(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


# --------------------------------------------------------------------------- FullyConnectedLayer


@pytest.mark.parametrize("lr", [1.0, 0.01])
@pytest.mark.parametrize("activation", ["linear", "lrelu"])
def test_fc_formula(lr, activation):
    torch.manual_seed(0)
    layer = _randomize(FullyConnectedLayer(6, 4, activation=activation, lr_multiplier=lr), seed=1)
    x = _rand((3, 6), seed=2)
    w = layer.weight.detach() * lr / math.sqrt(6)
    b = layer.bias.detach() * lr
    ref = x @ w.T + b
    if activation == "lrelu":
        ref = _lrelu(ref)
    torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-5)


def test_fc_formula_float64_elementwise():
    layer = _randomize(FullyConnectedLayer(3, 2, lr_multiplier=0.5), seed=3)
    x = _rand((2, 3), seed=4, dtype=torch.float64)
    y = layer(x)
    assert y.dtype == torch.float64
    w, b = layer.weight.detach(), layer.bias.detach()
    for n in range(2):
        for o in range(2):
            acc = sum(float(x[n, i]) * float(w[o, i]) * 0.5 / math.sqrt(3) for i in range(3))
            acc += float(b[o]) * 0.5
            assert y[n, o].item() == pytest.approx(acc, rel=1e-6, abs=1e-6)


def test_fc_without_bias():
    for activation in ("linear", "relu"):
        layer = _randomize(FullyConnectedLayer(5, 3, bias=False, activation=activation), seed=5)
        assert layer.bias is None
        x = _rand((2, 5), seed=6)
        ref = x @ (layer.weight.detach() / math.sqrt(5)).T
        if activation == "relu":
            ref = ref.clamp(min=0) * SQRT2
        torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-5)
        assert set(layer.state_dict()) == {"weight"}


def test_fc_init_and_bias_init():
    torch.manual_seed(0)
    layer = FullyConnectedLayer(64, 64, lr_multiplier=0.01, bias_init=1.0)
    assert torch.all(layer.bias == 1.0)
    # weights are stored as N(0, 1) / lr_mul so that the effective weight is N(0, 1/in)
    std = (layer.weight * 0.01).std().item()
    assert 0.9 < std < 1.1
    x = torch.zeros(1, 64)
    torch.testing.assert_close(layer(x), torch.full((1, 64), 0.01))  # bias * lr_mul


def test_fc_state_dict_keys_and_trainable():
    layer = FullyConnectedLayer(4, 3)
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    frozen = FullyConnectedLayer(4, 3, trainable=False)
    assert not frozen.weight.requires_grad and not frozen.bias.requires_grad


def test_fc_unknown_activation():
    with pytest.raises(ValueError):
        FullyConnectedLayer(4, 3, activation="nope")


def test_fc_gradcheck():
    layer = _randomize(FullyConnectedLayer(3, 2, activation="tanh", lr_multiplier=0.1), seed=7).double()
    x = _rand((2, 3), seed=8, dtype=torch.float64).requires_grad_(True)
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    fn = lambda x, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))


# --------------------------------------------------------------------------- Conv2dLayer


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("activation", ["linear", "lrelu"])
def test_conv_formula(k, activation):
    layer = _randomize(Conv2dLayer(3, 4, k, activation=activation), seed=10)
    x = _rand((2, 3, 5, 6), seed=11)
    ref = F.conv2d(x, layer.weight.detach() / math.sqrt(3 * k * k), padding=k // 2) + layer.bias.detach().reshape(1, -1, 1, 1)
    if activation == "lrelu":
        ref = _lrelu(ref)
    y = layer(x)
    assert y.shape == (2, 4, 5, 6)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_conv_clamp_and_runtime_gain():
    layer = _randomize(Conv2dLayer(3, 4, 3, activation="lrelu", conv_clamp=0.5), seed=12)
    x = _rand((2, 3, 5, 5), seed=13) * 3
    pre = F.conv2d(x, layer.weight.detach() / math.sqrt(27), padding=1) + layer.bias.detach().reshape(1, -1, 1, 1)
    y = layer(x)
    torch.testing.assert_close(y, _lrelu(pre).clamp(-0.5, 0.5), rtol=1e-5, atol=1e-5)
    assert (y.abs() == 0.5).any()
    # gain scales both the activation gain and the clamp
    y2 = layer(x, gain=2.0)
    torch.testing.assert_close(y2, _lrelu(pre, gain=2 * SQRT2).clamp(-1.0, 1.0), rtol=1e-5, atol=1e-5)


def test_conv_without_bias():
    layer = _randomize(Conv2dLayer(2, 3, 3, bias=False), seed=14)
    x = _rand((1, 2, 4, 4), seed=15)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight.detach() / math.sqrt(18), padding=1), rtol=1e-5, atol=1e-5)
    assert set(layer.state_dict()) == {"weight", "resample_filter"}


@pytest.mark.parametrize("up,down", [(1, 2), (2, 1)])
def test_conv_resampling(up, down):
    layer = _randomize(Conv2dLayer(3, 2, 3, activation="lrelu", up=up, down=down), seed=16)
    x = _rand((2, 3, 8, 6), seed=17)
    y = layer(x)
    assert y.shape == (2, 2, 8 * up // down, 6 * up // down)
    f = setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(layer.resample_filter, f)
    pre = conv2d_resample(x, layer.weight.detach() / math.sqrt(27), f=f, up=up, down=down, padding=1, flip_weight=(up == 1))
    torch.testing.assert_close(y, _lrelu(pre + layer.bias.detach().reshape(1, -1, 1, 1)), rtol=1e-5, atol=1e-5)


def test_conv_state_dict_keys_and_init():
    torch.manual_seed(0)
    layer = Conv2dLayer(8, 4, 3, down=2)
    assert set(layer.state_dict()) == {"weight", "bias", "resample_filter"}
    assert layer.weight.shape == (4, 8, 3, 3) and layer.bias.shape == (4,)
    assert torch.all(layer.bias == 0)
    assert not any(n == "resample_filter" for n, _ in layer.named_parameters())
    assert layer.resample_filter.shape == (4, 4) and layer.resample_filter.dtype == torch.float32
    layer2 = Conv2dLayer(8, 4, 3, resample_filter=[1, 2, 1])
    torch.testing.assert_close(layer2.resample_filter, setup_filter([1, 2, 1]))


def test_conv_channels_last_same_result():
    torch.manual_seed(0)
    a = Conv2dLayer(3, 4, 3, channels_last=True)
    b = Conv2dLayer(3, 4, 3)
    b.load_state_dict(a.state_dict())
    x = _rand((1, 3, 5, 5), seed=18)
    torch.testing.assert_close(a(x), b(x))


def test_conv_gradcheck():
    # Parameters stay float32 (the layer casts them to x.dtype); only the input is float64. Note that
    # layer.double() would also cast the resample_filter buffer, which the ops require to be float32.
    layer = _randomize(Conv2dLayer(2, 2, 3, activation="sigmoid", down=2), seed=19)
    x = _rand((1, 2, 4, 4), seed=20, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(layer, (x,))
    w = layer.weight.detach().double().requires_grad_(True)
    b = layer.bias.detach().double().requires_grad_(True)
    fn = lambda x, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))

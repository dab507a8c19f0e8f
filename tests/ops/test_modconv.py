"""modulated_conv2d against a per-sample loop that modulates/demodulates the weight explicitly; StyleGAN3's
modulated_conv2d_sg3 fast paths against its grouped reference."""

from __future__ import annotations

import math

import pytest
import torch

from stylegan.ops import conv2d_resample, fast_paths, modulated_conv2d, modulated_conv2d_sg3, setup_filter


def naive_modconv(x, weight, styles, noise=None, up=1, down=1, padding=0, f=None, demodulate=True, flip_weight=True):
    """StyleGAN2 eqs. 1-3, one sample at a time, with explicit sums."""
    o, i, kh, kw = weight.shape
    outs = []
    for n in range(x.shape[0]):
        w = weight.clone()
        for c in range(i):  # eq. 1: scale input channel c by s_c
            w[:, c] = w[:, c] * styles[n, c]
        if demodulate:  # eq. 3: divide every output filter by its L2 norm
            for oc in range(o):
                norm = math.sqrt(float((w[oc] ** 2).sum()) + 1e-8)
                w[oc] = w[oc] / norm
        y = conv2d_resample(x[n : n + 1], w, f=f, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if noise is not None:
            y = y + noise[n : n + 1]
        outs.append(y)
    return torch.cat(outs)


def _rand(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def _inputs(n=3, i=4, o=5, k=3, h=6, seed=0, dtype=torch.float64):
    x = _rand((n, i, h, h), seed, dtype)
    weight = _rand((o, i, k, k), seed + 1, dtype)
    styles = _rand((n, i), seed + 2, dtype) + 1.0
    return x, weight, styles


CASES = [
    dict(padding=1),
    dict(padding=1, demodulate=False),
    dict(up=2, padding=1, flip_weight=False),
    dict(up=2, padding=1, demodulate=False),
    dict(up=2, padding=1, flip_weight=True),
    dict(down=2, padding=1),
    dict(k=1, padding=0),
    dict(k=1, padding=0, demodulate=False, up=2),
]


def _case_id(c):
    return "-".join(f"{k}={v}" for k, v in c.items())


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("with_noise", [False, True])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_per_sample_reference(case, fused, with_noise):
    case = dict(case)
    k = case.pop("k", 3)
    x, weight, styles = _inputs(k=k)
    f = setup_filter([1, 3, 3, 1]) if case.get("up", 1) > 1 or case.get("down", 1) > 1 else None
    y_shape_h = 6 * case.get("up", 1) // case.get("down", 1)
    noise = _rand((3, 1, y_shape_h, y_shape_h), seed=9) * 0.3 if with_noise else None
    y = modulated_conv2d(x, weight, styles, noise=noise, resample_filter=f, fused_modconv=fused, **case)
    ref = naive_modconv(x, weight, styles, noise=noise, f=f, **case)
    assert y.shape == ref.shape == (3, 5, y_shape_h, y_shape_h)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    # float32 may take a different (faster) code path: same function up to float32 rounding
    n32 = noise.float() if noise is not None else None
    y32 = modulated_conv2d(x.float(), weight.float(), styles.float(), noise=n32, resample_filter=f, fused_modconv=fused, **case)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1)])
def test_fused_equals_unfused_float32(up, down):
    x, weight, styles = _inputs(dtype=torch.float32, seed=20)
    f = setup_filter([1, 3, 3, 1])
    noise = _rand((3, 1, 6 * up, 6 * up), seed=21, dtype=torch.float32)
    kw = dict(noise=noise, up=up, down=down, padding=1, resample_filter=f)
    y1 = modulated_conv2d(x, weight, styles, fused_modconv=True, **kw)
    y2 = modulated_conv2d(x, weight, styles, fused_modconv=False, **kw)
    ref = naive_modconv(x.double(), weight.double(), styles.double(), noise=noise.double(), up=up, down=down, padding=1, f=f)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y1.double(), ref, rtol=1e-5, atol=1e-5)


def test_per_channel_noise():
    x, weight, styles = _inputs(seed=30)
    noise = _rand((3, 5, 6, 6), seed=31)
    for fused in (True, False):
        y = modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=fused)
        torch.testing.assert_close(y, naive_modconv(x, weight, styles, noise=noise, padding=1))


def test_demodulation_gives_unit_norm_filters():
    """With demodulation, a 1x1 conv of a one-hot pixel returns w'[:, c] whose filters have norm 1."""
    _, weight, styles = _inputs(n=1, k=1, seed=40)
    x = torch.zeros(1, 4, 1, 1, dtype=torch.float64)
    cols = []
    for c in range(4):
        x.zero_()
        x[0, c] = 1
        cols.append(modulated_conv2d(x, weight, styles)[0, :, 0, 0])
    wd = torch.stack(cols, dim=1)  # [O, I] effective weight
    torch.testing.assert_close(wd.square().sum(dim=1), torch.ones(5, dtype=torch.float64))
    expected = weight[:, :, 0, 0] * styles[0]
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(wd, expected)


def test_demodulated_output_is_invariant_to_style_scale():
    x, weight, styles = _inputs(seed=50)
    y = modulated_conv2d(x, weight, styles, padding=1)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles * 7.5, padding=1), y)
    torch.testing.assert_close(modulated_conv2d(x, weight * 3.0, styles, padding=1), y)
    # without demodulation it scales linearly
    y_nd = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles * 2, padding=1, demodulate=False), 2 * y_nd)


def test_samples_are_independent():
    x, weight, styles = _inputs(seed=60)
    y = modulated_conv2d(x, weight, styles, padding=1)
    for n in range(3):
        torch.testing.assert_close(y[n : n + 1], modulated_conv2d(x[n : n + 1], weight, styles[n : n + 1], padding=1))


def test_float16_prenormalisation_matches_float32():
    x, weight, styles = _inputs(seed=70, dtype=torch.float32)
    # without the pre-normalisation, sum(w'^2) ~ (100 * 1000)^2 * 36 overflows float16
    y32 = modulated_conv2d(x, weight * 100, styles * 1000, padding=1)
    y16 = modulated_conv2d(x.half(), (weight * 100).half(), (styles * 1000).half(), padding=1)
    assert y16.dtype == torch.float16 and torch.isfinite(y16).all()
    torch.testing.assert_close(y16.float(), y32, rtol=2e-2, atol=2e-2)


def test_shape_checks():
    x, weight, styles = _inputs()
    with pytest.raises(AssertionError):
        modulated_conv2d(x, weight, styles[:2])
    with pytest.raises(AssertionError):
        modulated_conv2d(x[:, :3], weight, styles)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "kw",
    [dict(padding=1), dict(padding=1, demodulate=False), dict(up=2, padding=1, flip_weight=False), dict(down=2, padding=1)],
    ids=["plain", "nodemod", "up2", "down2"],
)
def test_gradcheck_x_weight_styles(fused, kw):
    x, weight, styles = _inputs(n=2, i=2, o=2, h=4, seed=80)
    noise = _rand((2, 1, 1, 1), seed=81)  # broadcast noise; grads flow around it
    f = setup_filter([1, 3, 3, 1]) if kw.get("up", 1) > 1 or kw.get("down", 1) > 1 else None
    for t in (x, weight, styles):
        t.requires_grad_(True)
    fn = lambda x, w, s: modulated_conv2d(x, w, s, noise=noise, resample_filter=f, fused_modconv=fused, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight, styles))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(padding=1, demodulate=False),
        dict(up=2, padding=1, flip_weight=False),
        dict(k=1),
        dict(k=1, demodulate=False),
    ],
    ids=["plain", "nodemod", "up2", "1x1", "1x1-nodemod"],
)
def test_float32_gradients_match_float64(fused, kw):
    """float32 (possibly a faster code path) has the gradients of the gradchecked float64 path."""
    kw = dict(kw)
    x64, w64, s64 = _inputs(n=2, i=4, o=3, h=5, k=kw.pop("k", 3), seed=85)
    f = setup_filter([1, 3, 3, 1]) if kw.get("up", 1) > 1 else None
    noise64 = _rand((2, 1, 1, 1), seed=86)
    gy = _rand(modulated_conv2d(x64, w64, s64, resample_filter=f, **kw).shape, seed=87)
    grads, outs = [], []
    for dtype in (torch.float64, torch.float32):
        ins = [t.to(dtype).clone().requires_grad_(True) for t in (x64, w64, s64)]
        y = modulated_conv2d(*ins, noise=noise64.to(dtype), resample_filter=f, fused_modconv=fused, **kw)
        outs.append(y.detach().double())
        grads.append([g.double() for g in torch.autograd.grad((y * gy.to(dtype)).sum(), ins)])
    ref = naive_modconv(x64, w64, s64, noise=noise64, f=f, **kw)
    torch.testing.assert_close(outs[0], ref, rtol=1e-10, atol=1e-10)  # forward values with autograd on
    torch.testing.assert_close(outs[1], ref, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(grads[1], grads[0]):
        torch.testing.assert_close(g32, g64, rtol=1e-4, atol=1e-4)


def test_gradcheck_noise():
    x, weight, styles = _inputs(n=2, i=2, o=2, h=4, seed=90)
    noise = _rand((2, 1, 4, 4), seed=91).requires_grad_(True)
    for fused in (True, False):
        fn = lambda n, fused=fused: modulated_conv2d(x, weight, styles, noise=n, padding=1, fused_modconv=fused)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (noise,))


@pytest.mark.parametrize("kernel, demodulate, gain", [(3, True, True), (3, False, False), (1, True, True), (3, True, False)])
@pytest.mark.parametrize("grad", [False, True])
def test_sg3_modulated_conv_fast_paths_match_the_grouped_reference(kernel, demodulate, gain, grad):
    """StyleGAN3's modulated convolution: the CPU fast paths (shared channels-last convolution in inference, batched
    1x1 product) against the official grouped convolution."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn([3, 5, 9, 9], generator=g)
    w0 = torch.randn([4, 5, kernel, kernel], generator=g)
    s0 = torch.randn([3, 5], generator=g) + 1
    input_gain = torch.tensor(0.7) if gain else None
    outs = {}
    for fast in (False, True):
        x, w, s = (t.clone().requires_grad_(grad) for t in (x0, w0, s0))
        with fast_paths(fast), torch.set_grad_enabled(grad):
            y = modulated_conv2d_sg3(x, w, s, demodulate=demodulate, padding=kernel - 1, input_gain=input_gain)
            assert y.is_contiguous() and y.shape == (3, 4, 9 + kernel - 1, 9 + kernel - 1)
            grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum(), [x, w, s]) if grad else ()
        outs[fast] = (y.detach(), *grads)
    for ref, got in zip(outs[False], outs[True]):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)

"""upfirdn2d and its helpers against an explicit, loop-based numpy reference (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad4(p):
    if isinstance(p, int):
        return p, p, p, p
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    return tuple(p)


def naive_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """Zero insertion, explicit pad/crop, direct sliding-window true convolution, subsampling.

    `f` is a 2-D [fh, fw] array, a 1-D array (meaning the separable outer product f[y] * f[x]) or None.
    """
    x = np.asarray(x, dtype=np.float64)
    f = np.ones((1, 1)) if f is None else np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    f = f * gain
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    n, c, h, w = x.shape

    # 1. Upsample: put x[i, j] at (i * upy, j * upx), zeros elsewhere.
    uh, uw = h * upy, w * upx
    u = np.zeros((n, c, uh, uw))
    for i in range(h):
        for j in range(w):
            u[:, :, i * upy, j * upx] = x[:, :, i, j]

    # 2. Pad (positive) / crop (negative): padded pixel (i, j) is u[i - py0, j - px0] or 0 outside.
    ph, pw = uh + py0 + py1, uw + px0 + px1
    p = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            si, sj = i - py0, j - px0
            if 0 <= si < uh and 0 <= sj < uw:
                p[:, :, i, j] = u[:, :, si, sj]

    # 3. True convolution (the filter is flipped) or correlation (flip_filter), 'valid' region.
    k = f if flip_filter else f[::-1, ::-1]
    fh, fw = k.shape
    oh, ow = ph - fh + 1, pw - fw + 1
    assert oh > 0 and ow > 0
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            acc = np.zeros((n, c))
            for a in range(fh):
                for b in range(fw):
                    acc += p[:, :, oy + a, ox + b] * k[a, b]
            out[:, :, oy, ox] = acc

    # 4. Downsample: keep every down-th pixel starting at 0.
    return out[:, :, ::downy, ::downx]


def _x(shape=(2, 3, 5, 6), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def _rand_filter(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float32) + 0.1


def _check(x, f, rtol=1e-10, **kw):
    """The op in float64 vs the reference. The filter is float32, so any float32 arithmetic on it
    inside the op (gain ** 0.5 per axis of a separable filter) limits the agreement to ~1e-7."""
    y = upfirdn2d(x, f, **kw)
    ref = naive_upfirdn2d(x.numpy(), None if f is None else f.double().numpy(), **kw)
    assert tuple(y.shape) == ref.shape, (tuple(y.shape), ref.shape)
    np.testing.assert_allclose(y.numpy(), ref, rtol=rtol, atol=rtol * 1e-2)
    # float32 may take a different (faster) code path: same function up to float32 rounding
    y32 = upfirdn2d(x.float(), f, **kw)
    assert y32.dtype == torch.float32 and tuple(y32.shape) == ref.shape
    np.testing.assert_allclose(y32.double().numpy(), ref, rtol=1e-5, atol=1e-5)
    return y


# --------------------------------------------------------------------------- the reference itself


def test_naive_reference_impulse_response_is_the_filter():
    """A unit impulse convolved with f reproduces f (true convolution), flipped if flip_filter."""
    f = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1
    y = naive_upfirdn2d(x, f, padding=[2, 2, 1, 1])
    assert y.shape == (1, 1, 4, 5)
    np.testing.assert_array_equal(y[0, 0, 1:3, 1:4], f)
    yf = naive_upfirdn2d(x, f, padding=[2, 2, 1, 1], flip_filter=True)
    np.testing.assert_array_equal(yf[0, 0, 1:3, 1:4], f[::-1, ::-1])


def test_impulse_response_is_the_filter():
    """Same as above, on the op: orientation of rows/columns and the flip convention."""
    f = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 1] = 1
    y = upfirdn2d(x, f, padding=[2, 2, 1, 1])
    assert tuple(y.shape) == (1, 1, 4, 5)
    torch.testing.assert_close(y[0, 0, 1:3, 1:4], f.double())
    assert y.sum().item() == pytest.approx(21)
    yf = upfirdn2d(x, f, padding=[2, 2, 1, 1], flip_filter=True)
    torch.testing.assert_close(yf[0, 0, 1:3, 1:4], f.double().flip([0, 1]))


# --------------------------------------------------------------------------- upfirdn2d vs reference


@pytest.mark.parametrize("up", [1, 2, (2, 1), (1, 3)])
@pytest.mark.parametrize("down", [1, 2, (1, 2)])
def test_up_down_grid(up, down):
    x = _x(seed=2)
    f = setup_filter([1, 3, 3, 1])
    _check(x, f, up=up, down=down, padding=[2, 1, 2, 1])


@pytest.mark.parametrize(
    "padding",
    [0, 1, [2, 1], [1, 2, 0, 3], [3, 0, 1, 2], [-1, 2, 1, -2], [-2, -1, -1, 0], [0, 0, -2, -2]],
)
def test_asymmetric_padding_including_crop(padding):
    x = _x(shape=(1, 2, 6, 7), seed=3)
    f = _rand_filter((2, 3))  # non-square, non-symmetric: catches x/y swaps and flips
    _check(x, f, padding=padding)
    _check(x, f, up=2, padding=padding)
    _check(x, f, down=2, padding=padding)


def test_negative_padding_crops():
    """With a 1x1 identity filter, negative padding is pure cropping."""
    x = _x(shape=(1, 1, 5, 6), seed=4)
    y = upfirdn2d(x, None, padding=[-1, -2, -2, 0])
    torch.testing.assert_close(y, x[:, :, 2:, 1:-2], rtol=0, atol=0)
    y = upfirdn2d(x, None, padding=[1, 0, 0, 2])
    assert tuple(y.shape) == (1, 1, 7, 7)
    torch.testing.assert_close(y[:, :, :5, 1:], x, rtol=0, atol=0)
    assert y[:, :, :, 0].abs().sum() == 0 and y[:, :, 5:, :].abs().sum() == 0


def test_identity_and_zero_insertion_with_no_filter():
    x = _x(shape=(1, 2, 3, 4), seed=5)
    torch.testing.assert_close(upfirdn2d(x, None), x, rtol=0, atol=0)
    y = upfirdn2d(x, None, up=2)
    assert tuple(y.shape) == (1, 2, 6, 8)
    torch.testing.assert_close(y[:, :, ::2, ::2], x, rtol=0, atol=0)
    assert y[:, :, 1::2, :].abs().sum() == 0 and y[:, :, :, 1::2].abs().sum() == 0
    y = upfirdn2d(x, None, up=(2, 1))  # up = (x, y): only the width doubles
    assert tuple(y.shape) == (1, 2, 3, 8)
    torch.testing.assert_close(upfirdn2d(x, None, down=(2, 1)), x[:, :, :, ::2], rtol=0, atol=0)


@pytest.mark.parametrize("flip_filter", [False, True])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_flip_filter(flip_filter, up, down):
    x = _x(shape=(1, 2, 5, 4), seed=6)
    f = _rand_filter((3, 4), seed=7)
    y = _check(x, f, up=up, down=down, padding=[2, 1, 1, 2], flip_filter=flip_filter)
    # flip_filter=True is the same as flipping the filter
    y2 = upfirdn2d(x, f.flip([0, 1]), up=up, down=down, padding=[2, 1, 1, 2], flip_filter=not flip_filter)
    torch.testing.assert_close(y, y2)


@pytest.mark.parametrize("gain", [0.5, 3.0])
@pytest.mark.parametrize("separable", [False, True])
def test_gain(gain, separable):
    x = _x(shape=(1, 2, 4, 5), seed=8)
    f = setup_filter([1, 2, 1], separable=separable)
    y = _check(x, f, up=2, padding=1, gain=gain, rtol=1e-6)
    torch.testing.assert_close(y, upfirdn2d(x, f, up=2, padding=1) * gain)


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 3, 4], [0.5, 1, 2, 4, 4, 2, 1, 0.5, 0.25]])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), ((2, 1), 1), (1, (1, 2))])
def test_separable_equals_full_2d(taps, up, down):
    x = _x(shape=(1, 2, 8, 9), seed=9)
    f1 = setup_filter(taps, separable=True)
    f2 = setup_filter(taps, separable=False)
    assert f1.ndim == 1 and f2.ndim == 2
    kw = dict(up=up, down=down, padding=[2, 1, 3, 0], gain=1.5)
    y1 = _check(x, f1, rtol=1e-6, **kw)
    y2 = _check(x, f2, rtol=1e-6, **kw)
    torch.testing.assert_close(y1, y2, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("size", [(1, 1), (3, 3), (5, 5), (3, 5), (5, 2)])
def test_odd_and_non_square_filters(size):
    x = _x(shape=(1, 2, 5, 6), seed=10)
    f = _rand_filter(size, seed=11)
    _check(x, f, padding=[size[1] // 2, size[1] // 2, size[0] // 2, size[0] // 2])
    _check(x, f, up=2, down=1, padding=[1, 2, 2, 1])
    _check(x, f, up=1, down=2, padding=[1, 1, 1, 1])


def test_float32_input():
    x = _x(shape=(2, 3, 4, 4), seed=12, dtype=torch.float32)
    f = setup_filter([1, 3, 3, 1])
    y = upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 2, 1])
    assert y.dtype == torch.float32
    ref = naive_upfirdn2d(x.double().numpy(), f.double().numpy(), up=2, padding=[2, 1, 2, 1])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_channels_and_batch_are_independent():
    x = _x(shape=(2, 3, 4, 4), seed=13)
    f = _rand_filter((3, 3), seed=14)
    y = upfirdn2d(x, f, up=2, padding=1)
    for n in range(2):
        for c in range(3):
            torch.testing.assert_close(y[n : n + 1, c : c + 1], upfirdn2d(x[n : n + 1, c : c + 1], f, up=2, padding=1))


@pytest.mark.parametrize("f", [None, [[0.5]]])
@pytest.mark.parametrize("kw", [dict(gain=2.5), dict(gain=0.5, padding=[1, 0, -1, 2], down=2), dict(up=2, gain=3.0)])
def test_one_tap_filter_is_a_scale(f, kw):
    x = _x(shape=(1, 2, 4, 5), seed=15)
    f = None if f is None else torch.tensor(f)
    _check(x, f, rtol=1e-6, **kw)


@pytest.mark.parametrize("kw", [dict(), dict(up=2, padding=[2, 1, 2, 1]), dict(down=2, padding=1)])
@pytest.mark.parametrize("separable", [False, True])
def test_repeated_calls_with_same_filter(kw, separable):
    """Implementations may cache prepared filters: gain, flip, channel count and in-place edits of the
    filter must all be honoured on repeated calls with the same filter tensor."""
    f = setup_filter([1, 3, 2, 1], separable=separable)
    for dtype in (torch.float32, torch.float64):
        x = _x(shape=(1, 2, 5, 6), seed=16, dtype=dtype)
        y1 = upfirdn2d(x, f, **kw)
        torch.testing.assert_close(upfirdn2d(x, f, gain=3.0, **kw), y1 * 3.0)
        y_flip = upfirdn2d(x, f, flip_filter=True, **kw)
        torch.testing.assert_close(y_flip, upfirdn2d(x, f.flip(list(range(f.ndim))), **kw))
        assert not torch.allclose(y_flip, y1)
        x3 = _x(shape=(1, 3, 5, 6), seed=17, dtype=dtype)
        torch.testing.assert_close(upfirdn2d(x3, f, **kw)[:, :2], upfirdn2d(x3[:, :2], f, **kw))
        torch.testing.assert_close(upfirdn2d(x, f, **kw), y1)
    g = f.clone()
    x = _x(shape=(1, 2, 5, 6), seed=18, dtype=torch.float32)
    y1 = upfirdn2d(x, g, **kw)
    with torch.no_grad():
        g.mul_(2.0)
    torch.testing.assert_close(upfirdn2d(x, g, **kw), y1 * (2.0 if separable is False else 4.0))


def test_non_float32_filter_is_used_as_float32():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(upfirdn2d(_x(), f.double()), upfirdn2d(_x(), f), rtol=0, atol=0)


# --------------------------------------------------------------------------- setup_filter


def test_setup_filter_outer_product_and_normalisation():
    f = setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and tuple(f.shape) == (4, 4)
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    np.testing.assert_allclose(f.numpy(), expected, rtol=1e-7)
    assert f.sum().item() == pytest.approx(1.0)


def test_setup_filter_no_normalize():
    f = setup_filter([1, 2], normalize=False)
    np.testing.assert_array_equal(f.numpy(), [[1, 2], [2, 4]])


def test_setup_filter_separable_rules():
    assert setup_filter([1] * 7).ndim == 2  # < 8 taps: outer product
    f8 = setup_filter([1, 2, 3, 4, 4, 3, 2, 1])  # >= 8 taps: kept 1-D
    assert f8.ndim == 1 and f8.numel() == 8
    np.testing.assert_allclose(f8.numpy(), np.array([1, 2, 3, 4, 4, 3, 2, 1]) / 20.0, rtol=1e-7)
    assert setup_filter([1, 2, 3], separable=True).ndim == 1
    assert setup_filter([1] * 9, separable=False).shape == (9, 9)
    with pytest.raises(AssertionError):
        setup_filter([[1, 2], [3, 4]], separable=True)


def test_setup_filter_none_scalar_and_2d():
    np.testing.assert_array_equal(setup_filter(None).numpy(), [[1.0]])
    np.testing.assert_array_equal(setup_filter(5.0).numpy(), [[1.0]])
    np.testing.assert_array_equal(setup_filter(5.0, normalize=False).numpy(), [[25.0]])
    f2 = setup_filter([[1.0, 2.0, 1.0], [0.0, 4.0, 0.0]])
    assert f2.shape == (2, 3)
    np.testing.assert_allclose(f2.numpy(), np.array([[1, 2, 1], [0, 4, 0]]) / 8.0, rtol=1e-7)


def test_setup_filter_flip():
    taps = [[1.0, 2.0], [3.0, 4.0]]
    f = setup_filter(taps, normalize=False, flip_filter=True)
    np.testing.assert_array_equal(f.numpy(), [[4, 3], [2, 1]])
    f1 = setup_filter([1.0, 2.0, 3.0], normalize=False, flip_filter=True, separable=True)
    np.testing.assert_array_equal(f1.numpy(), [3, 2, 1])
    f2 = setup_filter([1.0, 2.0, 3.0], normalize=False, flip_filter=True)
    np.testing.assert_array_equal(f2.numpy(), np.outer([3, 2, 1], [3, 2, 1]))


def test_setup_filter_gain():
    f = setup_filter([1, 3, 3, 1], gain=4)
    assert f.sum().item() == pytest.approx(4.0)
    f1 = setup_filter([1, 3, 3, 1], gain=4, separable=True)
    assert f1.sum().item() == pytest.approx(2.0)  # sqrt(gain) per axis
    np.testing.assert_allclose(torch.outer(f1, f1).numpy(), f.numpy(), rtol=1e-6)


def test_setup_filter_does_not_modify_input_tensor():
    t = torch.tensor([1.0, 3.0, 3.0, 1.0])
    setup_filter(t, separable=True, gain=2)
    np.testing.assert_array_equal(t.numpy(), [1, 3, 3, 1])


# --------------------------------------------------------------------------- filter2d / upsample2d / downsample2d


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 1], [2.0, 1.0, 3.0]])
def test_filter2d_keeps_size_and_matches_reference(taps):
    x = _x(shape=(1, 2, 5, 6), seed=20)
    f = setup_filter(taps)
    y = filter2d(x, f)
    assert y.shape == x.shape
    n = len(taps)
    ref = naive_upfirdn2d(x.numpy(), f.double().numpy(), padding=[n // 2, (n - 1) // 2, n // 2, (n - 1) // 2])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    y = filter2d(x, f, padding=[1, 0, 2, 1], gain=2)
    assert tuple(y.shape) == (1, 2, 5 + 3, 6 + 1)


def test_filter2d_box_is_average_pool():
    x = _x(shape=(1, 2, 5, 6), seed=21)
    y = filter2d(x, setup_filter([1, 1, 1]))
    torch.testing.assert_close(y, F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True))


def test_upsample2d_box_is_nearest_neighbour():
    x = _x(shape=(1, 2, 3, 4), seed=22)
    y = upsample2d(x, setup_filter([1, 1]))
    torch.testing.assert_close(y, x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 3, 3, 1, 1, 3, 3, 1]])
def test_upsample2d_shape_reference_and_constant(taps):
    x = _x(shape=(1, 2, 4, 5), seed=23)
    f = setup_filter(taps)
    y = upsample2d(x, f)
    assert tuple(y.shape) == (1, 2, 8, 10)
    n = len(taps)
    p = [(n + 1) // 2, (n - 2) // 2] * 2
    ref = naive_upfirdn2d(x.numpy(), f.double().numpy(), up=2, padding=[p[0], p[1], p[0], p[1]], gain=4)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)

    c = torch.full((1, 1, 6, 6), 0.75, dtype=torch.float64)
    yc = upsample2d(c, f)
    assert tuple(yc.shape) == (1, 1, 12, 12)
    m = (n + 1) // 2
    torch.testing.assert_close(yc[:, :, m:-m, m:-m], torch.full_like(yc[:, :, m:-m, m:-m], 0.75))
    assert yc[0, 0, 0, 0] < 0.75  # the zero padding is visible at the border


def test_upsample2d_anisotropic():
    x = _x(shape=(1, 1, 3, 4), seed=24)
    y = upsample2d(x, setup_filter([1, 1]), up=(2, 1))
    assert tuple(y.shape) == (1, 1, 3, 8)


def test_downsample2d_box_is_average_pool():
    x = _x(shape=(1, 2, 6, 8), seed=25)
    torch.testing.assert_close(downsample2d(x, setup_filter([1, 1])), F.avg_pool2d(x, 2))


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1]])
def test_downsample2d_shape_reference_and_constant(taps):
    x = _x(shape=(1, 2, 8, 6), seed=26)
    f = setup_filter(taps)
    y = downsample2d(x, f)
    assert tuple(y.shape) == (1, 2, 4, 3)
    n = len(taps)
    p0, p1 = (n - 2 + 1) // 2, (n - 2) // 2
    ref = naive_upfirdn2d(x.numpy(), f.double().numpy(), down=2, padding=[p0, p1, p0, p1])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)

    c = torch.full((1, 1, 8, 8), -1.5, dtype=torch.float64)
    yc = downsample2d(c, f)
    assert tuple(yc.shape) == (1, 1, 4, 4)
    torch.testing.assert_close(yc[:, :, 1:-1, 1:-1], torch.full_like(yc[:, :, 1:-1, 1:-1], -1.5))


def test_down_after_up_with_box_is_identity():
    x = _x(shape=(1, 2, 4, 4), seed=27)
    f = setup_filter([1, 1])
    torch.testing.assert_close(downsample2d(upsample2d(x, f), f), x)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "kw",
    [
        dict(up=2, padding=[2, 1, 2, 1]),
        dict(down=2, padding=[1, 1, 1, 1]),
        dict(padding=[1, -1, 2, 0], flip_filter=True, gain=2.0),
        dict(up=2, down=2, padding=[1, 2, 0, 1]),
    ],
)
@pytest.mark.parametrize("separable", [False, True])
def test_gradcheck(kw, separable):
    g = torch.Generator().manual_seed(30)
    x = torch.randn(1, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 2, 1], separable=separable)  # float32; cast to x.dtype inside
    assert torch.autograd.gradcheck(lambda x: upfirdn2d(x, f, **kw), (x,))


@pytest.mark.parametrize(
    "kw",
    [
        dict(up=2, padding=[2, 1, 2, 1]),
        dict(up=2, padding=[0, 3, 1, 0], flip_filter=True),
        dict(up=(2, 1), down=(1, 2), padding=[1, 2, 0, 1]),
        dict(down=2, padding=[1, 1, 1, 1], gain=2.0),
        dict(padding=[1, -1, 2, 0], flip_filter=True),
        dict(padding=[2, 2, 1, 1]),
    ],
)
@pytest.mark.parametrize("f2d", [True, False])
def test_float32_gradients_match_float64(kw, f2d):
    """float32 (possibly a faster code path) has the gradients of the gradchecked float64 path."""
    f = setup_filter([1, 3, 2, 1], separable=not f2d)
    x64 = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(32), dtype=torch.float64)
    x32 = x64.float()
    gy = torch.randn(upfirdn2d(x64, f, **kw).shape, generator=torch.Generator().manual_seed(33), dtype=torch.float64)
    grads = []
    for x in (x64, x32):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((upfirdn2d(x, f, **kw) * gy.to(x.dtype)).sum(), x)
        grads.append(g.double())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_gradcheck_helpers():
    g = torch.Generator().manual_seed(31)
    x = torch.randn(1, 1, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1])
    assert torch.autograd.gradcheck(lambda x: upsample2d(x, f), (x,))
    assert torch.autograd.gradcheck(lambda x: downsample2d(x, f), (x,))
    assert torch.autograd.gradcheck(lambda x: filter2d(x, f), (x,))

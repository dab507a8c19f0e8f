"""conv2d_resample against a naive numpy pipeline (float64).

Semantics (the official "generic reference" order): all padding -- the user's `padding`, which is
relative to the upsampled image, plus the padding that keeps the FIR filter aligned -- is applied to the
zero-inserted image first; then everything runs in 'valid' mode:

    zero-insert(x, up) -> pad/crop -> [FIR f * up^2 if up > 1] -> conv w -> [FIR f, keep every down-th]

where the alignment padding is the one of upsample2d ((fw + up - 1) // 2, (fw - up) // 2) and of
downsample2d ((fw - down + 1) // 2, (fw - down) // 2). The fast paths of the op (transposed conv,
strided conv, 1x1 shortcuts) must all reproduce this.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.ops import conv2d_resample, downsample2d, setup_filter, upfirdn2d, upsample2d


# --------------------------------------------------------------------------- naive building blocks


def _pad4(p):
    if isinstance(p, int):
        return [p, p, p, p]
    if len(p) == 2:
        return [p[0], p[0], p[1], p[1]]
    return list(p)


def naive_zero_insert_pad(x, up, px0, px1, py0, py1):
    """Zero insertion by `up`, then pad (positive) / crop (negative), by explicit index mapping."""
    n, c, h, w = x.shape
    uh, uw = h * up, w * up
    ph, pw = uh + py0 + py1, uw + px0 + px1
    out = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            ui, uj = i - py0, j - px0  # position in the upsampled image
            if 0 <= ui < uh and 0 <= uj < uw and ui % up == 0 and uj % up == 0:
                out[:, :, i, j] = x[:, :, ui // up, uj // up]
    return out


def naive_fir(x, f):
    """Depthwise 'valid' true convolution with 2-D filter f (sliding window, flipped kernel)."""
    k = f[::-1, ::-1]
    fh, fw = k.shape
    n, c, h, w = x.shape
    out = np.zeros((n, c, h - fh + 1, w - fw + 1))
    for a in range(fh):
        for b in range(fw):
            out += x[:, :, a : a + h - fh + 1, b : b + w - fw + 1] * k[a, b]
    return out


def naive_conv(x, w, groups, flip_weight):
    """'valid' grouped conv; flip_weight=True is correlation (F.conv2d), False is true convolution."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    assert c == cg * groups and o % groups == 0
    k = w if flip_weight else w[:, :, ::-1, ::-1]
    oh, ow = h - kh + 1, wd - kw + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for oc in range(o):
        g = oc // og
        for ic in range(cg):
            for a in range(kh):
                for b in range(kw):
                    out[:, oc] += x[:, g * cg + ic, a : a + oh, b : b + ow] * k[oc, ic, a, b]
    return out


def total_padding(padding, f_shape, up, down):
    px0, px1, py0, py1 = _pad4(padding)
    fh, fw = f_shape
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1


def naive_conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    if flip_filter:
        f = f[::-1, ::-1]
    px0, px1, py0, py1 = total_padding(padding, f.shape, up, down)
    y = naive_zero_insert_pad(x, up, px0, px1, py0, py1)
    if up > 1:
        y = naive_fir(y, f * up**2)
    y = naive_conv(y, w, groups, flip_weight)
    if down > 1:
        y = naive_fir(y, f)[:, :, ::down, ::down]
    return y


def generic_order(x, w, f, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """The same pipeline written with the (separately tested) upfirdn2d and F.conv2d."""
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    p = list(total_padding(padding, (fh, fw), up, down))
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=p, gain=up**2, flip_filter=flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def _rand(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


FILTERS = {
    "blur4": lambda: setup_filter([1, 3, 3, 1]),
    "tri3": lambda: setup_filter([1, 2, 1]),
    # non-symmetric, non-square: exposes flips and row/column mix-ups in the padding logic
    "asym": lambda: torch.tensor([[1.0, 2.0, 0.5, 0.2], [0.3, 1.5, 2.5, 0.1], [0.7, 0.4, 1.2, 0.9]]) / 12.3,
    "sep8": lambda: setup_filter([1, 2, 3, 4, 4, 3, 2, 1]),
}

# (kernel, up, down, padding, groups, flip_weight, filter)
CASES = [
    (1, 1, 1, 0, 1, True, None),
    (3, 1, 1, 1, 1, True, None),
    (3, 1, 1, 1, 1, False, None),
    (3, 1, 1, 0, 2, True, None),
    (3, 1, 1, [1, 0], 1, True, None),  # [px, py]: symmetric per axis, still the plain path
    (3, 1, 1, [0, 2], 1, False, None),
    (3, 1, 1, [1, 0, 2, 1], 1, True, None),  # asymmetric: general fallback
    (3, 1, 1, [-1, 1, 0, 2], 2, False, None),  # with a crop
    (2, 1, 1, [1, 0, 1, 0], 1, True, None),  # even kernel
    (1, 1, 2, 0, 1, True, "blur4"),  # 1x1 down shortcut
    (1, 1, 2, 0, 2, False, "asym"),
    (1, 2, 1, 0, 1, True, "blur4"),  # 1x1 up shortcut
    (1, 2, 1, 0, 2, True, "asym"),
    (3, 1, 2, 1, 1, True, "blur4"),  # filter then strided conv
    (3, 1, 2, 1, 1, False, "blur4"),
    (3, 1, 2, 1, 2, True, "asym"),
    (3, 1, 2, [0, 1, 2, 0], 1, True, "tri3"),
    (3, 2, 1, 1, 1, True, "blur4"),  # transposed conv then filter
    (3, 2, 1, 1, 1, False, "blur4"),
    (3, 2, 1, 1, 2, True, "blur4"),
    (3, 2, 1, 1, 2, False, "asym"),
    (3, 2, 1, [0, 1, 2, 0], 1, True, "asym"),
    (3, 2, 1, 1, 1, False, "tri3"),  # odd filter
    (5, 2, 1, 0, 1, True, "blur4"),  # transposed-conv padding > 0
    (5, 2, 1, [0, 2, 1, 0], 2, False, "asym"),
    (2, 2, 1, 0, 1, False, "blur4"),
    (3, 2, 1, 1, 1, True, "sep8"),  # separable filter
    (3, 1, 2, 1, 1, False, "sep8"),
    (3, 2, 2, 1, 1, True, "blur4"),  # up and down
    (3, 2, 2, 1, 2, False, "asym"),
    (1, 2, 2, 0, 1, True, "blur4"),
]


def _case_id(c):
    k, up, down, pad, groups, flip, f = c
    return f"k{k}-up{up}-down{down}-pad{pad}-g{groups}-{'corr' if flip else 'conv'}-{f}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_naive_reference(case):
    k, up, down, padding, groups, flip_weight, fname = case
    f = None if fname is None else FILTERS[fname]()
    cin, cout = 2 * groups, 2 * groups
    h, w = (9, 8) if (fname == "sep8" and down > 1) else (5, 6)
    x = _rand((2, cin, h, w), seed=1)
    wt = _rand((cout, cin // groups, k, k), seed=2)
    y = conv2d_resample(x, wt, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight)
    ref = naive_conv2d_resample(
        x.numpy(), wt.numpy(), None if f is None else f.double().numpy(), up, down, padding, groups, flip_weight
    )
    assert tuple(y.shape) == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-9, atol=1e-11)
    gen = generic_order(x, wt, f, up, down, padding, groups, flip_weight)
    torch.testing.assert_close(y, gen, rtol=1e-9, atol=1e-11)
    # float32 may take a different (faster) code path: same function up to float32 rounding
    y32 = conv2d_resample(x.float(), wt.float(), f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight)
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.double().numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_flip_filter(up, down):
    f = FILTERS["asym"]()
    x = _rand((1, 2, 5, 6), seed=3)
    wt = _rand((3, 2, 3, 3), seed=4)
    y = conv2d_resample(x, wt, f=f, up=up, down=down, padding=1, flip_filter=True)
    ref = naive_conv2d_resample(x.numpy(), wt.numpy(), f.double().numpy(), up, down, 1, flip_filter=True)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-9, atol=1e-11)
    if up > 1 or down > 1:
        y_noflip = conv2d_resample(x, wt, f=f, up=up, down=down, padding=1)
        assert not torch.allclose(y, y_noflip)


def test_float32_within_1e5():
    f = setup_filter([1, 3, 3, 1])
    for up, down in [(1, 1), (2, 1), (1, 2)]:
        x = _rand((2, 4, 6, 6), seed=5, dtype=torch.float32)
        wt = _rand((3, 4, 3, 3), seed=6, dtype=torch.float32)
        y = conv2d_resample(x, wt, f=f, up=up, down=down, padding=1)
        assert y.dtype == torch.float32
        ref = naive_conv2d_resample(x.double().numpy(), wt.double().numpy(), f.double().numpy(), up, down, 1)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- shapes and consistency checks


@pytest.mark.parametrize("k", [1, 3])
def test_shapes_same_padding(k):
    f = setup_filter([1, 3, 3, 1])
    x = _rand((1, 2, 8, 6), seed=7)
    wt = _rand((4, 2, k, k), seed=8)
    p = k // 2
    assert conv2d_resample(x, wt, f=f, padding=p).shape == (1, 4, 8, 6)
    assert conv2d_resample(x, wt, f=f, up=2, padding=p).shape == (1, 4, 16, 12)
    assert conv2d_resample(x, wt, f=f, down=2, padding=p).shape == (1, 4, 4, 3)
    assert conv2d_resample(x, wt, f=f, up=2, down=2, padding=p).shape == (1, 4, 8, 6)


def test_plain_equals_torch_conv():
    x = _rand((2, 4, 5, 6), seed=9)
    wt = _rand((6, 2, 3, 3), seed=10)
    torch.testing.assert_close(conv2d_resample(x, wt, padding=1, groups=2), F.conv2d(x, wt, padding=1, groups=2))
    torch.testing.assert_close(
        conv2d_resample(x, wt, padding=1, groups=2, flip_weight=False), F.conv2d(x, wt.flip([2, 3]), padding=1, groups=2)
    )


def test_up_interior_equals_upsample_then_conv():
    """Away from the border, up=2 is upsample2d followed by a 'same' conv: pins the filter alignment."""
    f = setup_filter([1, 3, 3, 1])
    x = _rand((1, 2, 6, 6), seed=11)
    wt = _rand((3, 2, 3, 3), seed=12)
    y = conv2d_resample(x, wt, f=f, up=2, padding=1)
    ref = F.conv2d(upsample2d(x, f), wt, padding=1)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], ref[:, :, 2:-2, 2:-2])
    # ... but not at the border: the padding is applied before the FIR filter, as officially
    assert not torch.allclose(y[:, :, 0], ref[:, :, 0])


def test_down_interior_equals_conv_then_downsample():
    f = setup_filter([1, 3, 3, 1])
    x = _rand((1, 2, 8, 8), seed=13)
    wt = _rand((3, 2, 3, 3), seed=14)
    y = conv2d_resample(x, wt, f=f, down=2, padding=1)
    ref = downsample2d(F.conv2d(x, wt, padding=1), f)
    torch.testing.assert_close(y[:, :, 1:-1, 1:-1], ref[:, :, 1:-1, 1:-1])


def test_groups_are_independent_convolutions():
    f = setup_filter([1, 3, 3, 1])
    x = _rand((1, 4, 5, 5), seed=15)
    wt = _rand((6, 2, 3, 3), seed=16)
    for up, down in [(1, 1), (2, 1), (1, 2)]:
        y = conv2d_resample(x, wt, f=f, up=up, down=down, padding=1, groups=2)
        y0 = conv2d_resample(x[:, :2], wt[:3], f=f, up=up, down=down, padding=1)
        y1 = conv2d_resample(x[:, 2:], wt[3:], f=f, up=up, down=down, padding=1)
        torch.testing.assert_close(y, torch.cat([y0, y1], dim=1))


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_linearity(up, down):
    f = setup_filter([1, 3, 3, 1])
    a = _rand((1, 2, 6, 6), seed=17)
    b = _rand((1, 2, 6, 6), seed=18)
    wt = _rand((3, 2, 3, 3), seed=19)
    op = lambda x: conv2d_resample(x, wt, f=f, up=up, down=down, padding=1)  # noqa: E731
    torch.testing.assert_close(op(2.0 * a - 3.0 * b), 2.0 * op(a) - 3.0 * op(b))


def test_dtype_mismatch_is_rejected():
    x = _rand((1, 2, 4, 4), seed=20)
    with pytest.raises(AssertionError):
        conv2d_resample(x, _rand((1, 2, 3, 3), seed=21, dtype=torch.float32))


def test_filter_of_another_float_dtype_is_used_as_float32():
    """A module cast with .double() casts its filter buffers; the op reads them as float32 filters."""
    x, w = _rand((1, 2, 4, 4), seed=20), _rand((1, 2, 3, 3), seed=21)
    f = setup_filter([1, 1])
    torch.testing.assert_close(conv2d_resample(x, w, f=f.double(), up=2), conv2d_resample(x, w, f=f, up=2), rtol=0, atol=0)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "up,down,groups,flip_weight",
    [(1, 1, 1, True), (1, 1, 2, False), (2, 1, 1, False), (2, 1, 2, True), (1, 2, 1, True), (2, 2, 1, True)],
)
def test_gradcheck(up, down, groups, flip_weight):
    f = setup_filter([1, 3, 3, 1])  # float32 while x and w are float64: allowed, cast inside
    x = _rand((1, 2, 4, 4), seed=22).requires_grad_(True)
    wt = _rand((2, 2 // groups, 3, 3), seed=23).requires_grad_(True)
    kw = dict(f=f, up=up, down=down, padding=1, groups=groups, flip_weight=flip_weight)
    assert torch.autograd.gradcheck(lambda x, w: conv2d_resample(x, w, **kw), (x, wt))


@pytest.mark.parametrize("up,down,groups,flip_weight", [(1, 1, 1, True), (2, 1, 2, False), (1, 2, 1, True), (2, 2, 2, True)])
def test_float32_gradients_match_float64(up, down, groups, flip_weight):
    """float32 (possibly a faster code path) has the gradients of the gradchecked float64 path."""
    f = setup_filter([1, 3, 3, 1])
    x64 = _rand((2, 4, 5, 6), seed=24)
    w64 = _rand((4, 4 // groups, 3, 3), seed=25)
    kw = dict(f=f, up=up, down=down, padding=1, groups=groups, flip_weight=flip_weight)
    gy = _rand(conv2d_resample(x64, w64, **kw).shape, seed=26)
    grads = []
    for dtype in (torch.float64, torch.float32):
        x = x64.to(dtype).clone().requires_grad_(True)
        w = w64.to(dtype).clone().requires_grad_(True)
        gx, gw = torch.autograd.grad((conv2d_resample(x, w, **kw) * gy.to(dtype)).sum(), (x, w))
        grads.append((gx.double(), gw.double()))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-5, atol=1e-4)

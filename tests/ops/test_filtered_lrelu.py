"""filtered_lrelu against a direct loop computation of its definition (float64), and gradchecks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylegan.ops import design_lowpass_filter, filtered_lrelu


def _fir(x: np.ndarray, f: np.ndarray, flip_filter: bool) -> np.ndarray:
    """'valid' 2-D FIR over the last two axes: true convolution (or correlation with flip_filter)."""
    fh, fw = f.shape
    k = f if flip_filter else f[::-1, ::-1]
    h, w = x.shape[-2] - fh + 1, x.shape[-1] - fw + 1
    out = np.zeros(x.shape[:-2] + (h, w))
    for i in range(h):
        for j in range(w):
            out[..., i, j] = (x[..., i : i + fh, j : j + fw] * k).sum(axis=(-2, -1))
    return out


def naive_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """The op's definition step by step: bias, zero insertion, pad/crop, fu (gain up²), lrelu, clamp, fd, subsample."""
    x = np.asarray(x, np.float64) + (0 if b is None else np.asarray(b, np.float64)[None, :, None, None])

    def as2d(f):
        return np.ones((1, 1)) if f is None else (np.outer(f, f) if f.ndim == 1 else np.asarray(f, np.float64))

    fu2, fd2 = as2d(fu), as2d(fd)
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = padding
    p = np.zeros((n, c, h * up + py0 + py1, w * up + px0 + px1))
    for i in range(p.shape[2]):
        for j in range(p.shape[3]):
            si, sj = i - py0, j - px0
            if 0 <= si < h * up and 0 <= sj < w * up:
                p[:, :, i, j] = u[:, :, si, sj]
    y = _fir(p, fu2 * up**2, flip_filter)
    y = np.where(y >= 0, y, y * slope) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    y = _fir(y, fd2, flip_filter)
    return y[:, :, ::down, ::down]


CASES = [
    # up, down, padding, fu taps, fd taps, radial fd, clamp, slope, gain, flip
    (2, 2, [7, 6, 7, 6], 12, 12, False, None, 0.2, math.sqrt(2), False),
    (4, 2, [11, 10, 11, 10], 24, 12, False, 0.5, 0.2, math.sqrt(2), False),
    (2, 4, [20, 19, 18, 21], 12, 24, True, 256.0, 0.2, math.sqrt(2), True),
    (2, 2, [-1, 6, 9, -2], 6, 6, False, None, 0.0, 1.5, False),
    (1, 1, [0, 0, 0, 0], 1, 1, False, 0.3, 1.0, 1.0, False),  # the ToRGB case: bias + clamp only
]


@pytest.mark.parametrize("up,down,padding,nu,nd,radial,clamp,slope,gain,flip", CASES)
def test_matches_definition(up, down, padding, nu, nd, radial, clamp, slope, gain, flip):
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 5, 6], generator=g)
    b = torch.randn([3], generator=g)
    fu = design_lowpass_filter(nu, cutoff=2, width=3, fs=4 * up)
    fd = design_lowpass_filter(nd, cutoff=2, width=3, fs=4 * up, radial=radial)
    y = filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    ref = naive_filtered_lrelu(x.numpy(), None if fu is None else fu.numpy(), None if fd is None else fd.numpy(), b.numpy(),
                               up, down, padding, gain, slope, clamp, flip)
    assert y.dtype == torch.float32 and tuple(y.shape) == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=2e-5)


def test_padding_forms_and_errors():
    x = torch.randn([1, 2, 4, 4])
    fu = design_lowpass_filter(6, 1, 2, 4)
    a = filtered_lrelu(x, fu, fu, up=2, down=2, padding=5)
    assert torch.equal(a, filtered_lrelu(x, fu, fu, up=2, down=2, padding=[5, 5]))
    assert torch.equal(a, filtered_lrelu(x, fu, fu, up=2, down=2, padding=[5, 5, 5, 5]))
    with pytest.raises(ValueError, match="b must have shape"):
        filtered_lrelu(x, b=torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        filtered_lrelu(x[0])
    with pytest.raises(ValueError, match="no output"):
        filtered_lrelu(x, fu, fu, up=2, down=2, padding=-6)


@pytest.mark.parametrize("radial", [False, True])
def test_gradcheck_float64(radial):
    g = torch.Generator().manual_seed(1)
    x = torch.randn([1, 2, 3, 3], generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], generator=g, dtype=torch.float64, requires_grad=True)
    fu = design_lowpass_filter(6, 1, 2, 4)
    fd = design_lowpass_filter(6, 1, 2, 4, radial=radial)

    def fn(x, b):
        return filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[3, 2, 2, 3], clamp=5.0)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))

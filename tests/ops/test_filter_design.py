"""Kaiser low-pass design against an independent numpy construction and the filters' defining properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.ops import design_lowpass_filter


def _kaiser_beta(numtaps: int, width: float, fs: float) -> float:
    """Kaiser's formulas: attenuation A from the taps and transition width, then β(A)."""
    a = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def _naive_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Windowed sinc h[m] = 2 f_c / fs · sinc(2 f_c m / fs) · kaiser[m], scaled to unit DC gain."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    h = 2 * cutoff / fs * np.sinc(2 * cutoff / fs * m)
    h *= np.kaiser(numtaps, _kaiser_beta(numtaps, width, fs))
    return h / h.sum()


def test_identity_is_none():
    assert design_lowpass_filter(1, cutoff=2, width=4, fs=16) is None
    with pytest.raises(ValueError):
        design_lowpass_filter(0, cutoff=2, width=4, fs=16)


@pytest.mark.parametrize("numtaps,cutoff,width,fs", [(12, 2.0, 6.56, 16), (24, 5.04, 3.16, 32), (12, 16.0, 6.6, 64), (6, 3.0, 2.0, 12)])
def test_separable_matches_windowed_sinc(numtaps, cutoff, width, fs):
    f = design_lowpass_filter(numtaps, cutoff, width, fs)
    assert f.dtype == torch.float32 and f.shape == (numtaps,)
    ref = _naive_lowpass(numtaps, cutoff, width, fs)
    np.testing.assert_allclose(f.numpy(), ref, rtol=0, atol=1e-7)
    np.testing.assert_allclose(f.numpy(), f.numpy()[::-1], atol=0)


def test_radial_jinc():
    numtaps, cutoff, width, fs = 12, 5.0, 6.0, 32
    f = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
    assert f.dtype == torch.float32 and f.shape == (numtaps, numtaps)
    a = f.numpy().astype(np.float64)
    assert abs(a.sum() - 1) < 1e-6
    np.testing.assert_allclose(a, a.T, atol=0)  # radially symmetric: transposes and flips are the same filter
    np.testing.assert_allclose(a, a[::-1, ::-1], atol=0)
    # Independent jinc: J1 from its integral J1(z) = 1/π ∫_0^π cos(τ - z sin τ) dτ, then the same window.
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    tau = np.linspace(0, np.pi, 20001)
    z = 2 * cutoff * np.pi * r
    j1 = np.trapezoid(np.cos(tau - z[..., None] * np.sin(tau)), tau, axis=-1) / np.pi
    w = np.kaiser(numtaps, _kaiser_beta(numtaps, width, fs))
    ref = j1 / (np.pi * r) * np.outer(w, w)
    np.testing.assert_allclose(a, ref / ref.sum(), rtol=0, atol=1e-7)
    # A low-pass: DC gain 1, far less gain near Nyquist.
    spectrum = np.abs(np.fft.fft2(a, [64, 64]))
    assert spectrum[0, 0] == pytest.approx(1, abs=1e-6) and spectrum[32, 32] < 0.05

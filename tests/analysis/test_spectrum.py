"""Average power spectra (as stylegan3 avg_spectra.py) on analytic images: a sinusoid and white noise."""

import numpy as np
import pytest
import torch

from stylegan.analysis import spectrum


def test_window_has_unit_energy():
    w = spectrum.kaiser_window_2d(32)
    assert w.square().sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(w, w.T)


@pytest.mark.parametrize("k", [3, 7])
def test_sinusoid_peaks_at_its_frequency(k):
    n = 32
    x = torch.arange(n, dtype=torch.float64)
    img = (128 + 100 * torch.cos(2 * np.pi * k * x / n)).expand(2, 3, n, n)  # k cycles per image along x
    acc = spectrum.SpectrumAccumulator(n)
    acc.add(img)
    result, spectra = spectrum.compare_spectra([("sine", acc)], std=1.0)
    s = spectra["sine"]
    assert s.shape == (4 * n, 4 * n)
    assert np.unravel_index(np.argmax(s), s.shape) in ((0, 4 * k), (0, 4 * n - 4 * k))
    assert sorted(map(abs, result.sources[0].peak_freq)) == [0, k]
    radial = np.array(result.sources[0].radial_db)
    assert int(np.argmax(radial)) == k


def test_white_noise_is_flat_at_one():
    g = torch.Generator().manual_seed(0)
    acc = spectrum.SpectrumAccumulator(32)
    for _ in range(4):
        acc.add(128 + 20 * torch.randn(64, 3, 32, 32, generator=g, dtype=torch.float64))
    result, spectra = spectrum.compare_spectra([("noise", acc)], std=20.0)
    s = spectra["noise"]
    # E|F|² = σ² Σ w² = 1 (the per-image mean removal takes away a negligible share)
    assert s.mean() == pytest.approx(1.0, rel=0.03)
    radial = np.array(result.sources[0].radial_db[2:])
    assert np.abs(radial).max() < 0.6  # flat within ~0.6 dB away from DC
    assert acc.pixel_std == pytest.approx(20.0, rel=0.02)


def test_default_scale_comes_from_first_source():
    a, b = spectrum.SpectrumAccumulator(8), spectrum.SpectrumAccumulator(8)
    g = torch.Generator().manual_seed(1)
    a.add(torch.rand(4, 1, 8, 8, generator=g) * 255)
    b.add(torch.rand(4, 1, 8, 8, generator=g) * 255)
    result, spectra = spectrum.compare_spectra([("real", a), ("generated", b)])
    assert result.std_source == "real" and result.std == pytest.approx(a.pixel_std)
    np.testing.assert_allclose(spectra["generated"], b.spectrum(1.0) / a.pixel_std**2)
    with pytest.raises(ValueError, match="same resolution"):
        spectrum.compare_spectra([("a", a), ("c", spectrum.SpectrumAccumulator(16))])

"""Equivariance metrics: the image operators on known signals, and finite dB values on the sg3t_32 network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylegan import load_network
from stylegan.metrics import compute_equivariance_metrics
from stylegan.metrics.equivariance import (
    apply_fractional_pseudo_rotation,
    apply_fractional_rotation,
    apply_fractional_translation,
    apply_integer_translation,
)


def _smooth(size: int = 32) -> torch.Tensor:
    """A band-limited test image well below Nyquist."""
    y, x = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    img = torch.cos(2 * math.pi * (1.5 * x + 0.5 * y)) + 0.5 * torch.sin(2 * math.pi * (0.5 * x - 1.0 * y))
    return img[None, None].float()


def test_integer_translation_is_a_shift():
    x = torch.randn([1, 2, 16, 16])
    z, m = apply_integer_translation(x, torch.tensor(3 / 16), torch.tensor(-2 / 16))
    assert torch.equal(z[:, :, :14, 3:], x[:, :, 2:, :13]) and m[:, :, :14, 3:].all() and m.sum() == 2 * 14 * 13


def test_fractional_translation_by_whole_pixels_is_the_integer_shift():
    x = torch.randn([1, 1, 16, 16])
    tx, ty = torch.tensor(2 / 16), torch.tensor(1 / 16)
    zi, _ = apply_integer_translation(x, tx, ty)
    zf, mf = apply_fractional_translation(x, tx, ty)
    assert mf.sum() > 0
    torch.testing.assert_close(zf * mf, zi * mf, atol=1e-5, rtol=0)


def test_fractional_translation_of_a_smooth_image():
    x = _smooth()
    half = torch.tensor(0.5 / 32)
    z, m = apply_fractional_translation(x, half, torch.tensor(0.0))
    y, xx = torch.meshgrid(torch.arange(32) / 32, (torch.arange(32) - 0.5) / 32, indexing="ij")
    expect = torch.cos(2 * math.pi * (1.5 * xx + 0.5 * y)) + 0.5 * torch.sin(2 * math.pi * (0.5 * xx - 1.0 * y))
    assert ((z - expect[None, None]).abs() * m).max() < 0.02


def test_rotation_operators():
    x = _smooth()
    z, m = apply_fractional_rotation(x, torch.tensor(0.0))
    assert m.sum() > 0 and ((z - x).abs() * m).max() < 0.02
    p, pm = apply_fractional_pseudo_rotation(x, torch.tensor(0.3))
    assert pm.sum() > 0 and ((p - x).abs() * pm).max() < 0.02  # a smooth image keeps its (low) frequencies
    r, rm = apply_fractional_rotation(x, torch.tensor(math.pi / 2))
    rot = torch.rot90(x, 1, dims=[2, 3])
    assert rm.sum() > 0 and ((r - rot).abs() * rm).max() < 0.05


def test_metrics_on_fixture(parity_dir):
    G = load_network(parity_dir / "sg3t_32").G_ema
    transform = G.synthesis.input.transform.clone()
    eq = compute_equivariance_metrics(G, num_samples=2, seed=1)
    assert set(eq) == {"eqt_int", "eqt_frac", "eqr"}
    assert all(np.isfinite(v) and v > 10 for v in eq.values()), eq
    assert torch.equal(G.synthesis.input.transform, transform)  # G itself is left alone
    assert compute_equivariance_metrics(G, num_samples=2, seed=1, eqt_frac=False, eqr=False) == {"eqt_int": eq["eqt_int"]}
    with pytest.raises(ValueError, match="StyleGAN3"):
        compute_equivariance_metrics(load_network(parity_dir / "sg2_32").G_ema, num_samples=1)
    with pytest.raises(ValueError, match="at least one"):
        compute_equivariance_metrics(G, eqt_int=False, eqt_frac=False, eqr=False)


def test_stylegan3_t_is_far_more_translation_equivariant_than_stylegan2_of_the_same_size():
    from stylegan.models import stylegan2, stylegan3

    torch.manual_seed(0)
    G3 = stylegan3.Generator(stylegan3.stylegan3_config("stylegan3-t", 32, z_dim=64, w_dim=64, channel_base=2048, channel_max=64))
    G2 = stylegan2.Generator(stylegan2.GeneratorConfig(
        z_dim=64, w_dim=64, img_resolution=32, mapping=stylegan2.MappingConfig(num_layers=2),
        synthesis=stylegan2.SynthesisConfig(channel_base=2048, channel_max=64)))
    eq3 = compute_equivariance_metrics(G3, num_samples=4, eqr=False, seed=1)
    eq2 = compute_equivariance_metrics(G2, num_samples=4, eqr=False, seed=1)
    assert all(math.isfinite(v) for v in (*eq3.values(), *eq2.values()))
    assert eq3["eqt_int"] > eq2["eqt_int"] + 30 and eq3["eqt_frac"] > eq2["eqt_frac"] + 30  # ~70 dB vs ~12 dB
    with pytest.raises(ValueError, match="EQ-R needs a StyleGAN3"):
        compute_equivariance_metrics(G2, num_samples=1, eqt_int=False, eqt_frac=False, eqr=True)

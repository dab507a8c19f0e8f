"""StyleGAN3: layer schedule against values derived by hand from the paper's formulas, configs T and R, the
Fourier-feature input and its transform, training-time behaviour (tests/models/test_contract.py checks what every
network keeps: save/load, truncation, labels, gradients)."""

from __future__ import annotations


import pytest
import torch

from stylegan.models.stylegan3 import Generator, GeneratorConfig, SynthesisConfig, stylegan3_config, synthesis_schedule


# ----------------------------------------------------------------------------- schedule
# By hand: f_c[i] = 2 (res/4)^(i/12) for i <= 12, f_t[i] = 2^2.1 (res/2 · 2^0.3 / 2^2.1)^(i/12), s[i] = the
# power of two at or above min(2 f_t[i], res), size = s + 20 (the last two: res), channels =
# rint(min(channel_base / 2 / f_c, channel_max)); e.g. 1024: log2(2 f_t[i]) = 3.1 + 0.6 i -> s = 16, 16, 32, 32, 64, 128, ...

HAND = {
    # (config, resolution): layer names L{i}_{size}_{channels}
    ("stylegan3-t", 1024): "L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_148_512 L6_148_512 L7_276_323 "
                           "L8_276_203 L9_532_128 L10_1044_81 L11_1044_51 L12_1044_32 L13_1024_32 L14_1024_3",
    ("stylegan3-r", 1024): "L0_36_1024 L1_36_1024 L2_52_1024 L3_52_1024 L4_84_1024 L5_148_1024 L6_148_1024 L7_276_645 "
                           "L8_276_406 L9_532_256 L10_1044_161 L11_1044_102 L12_1044_64 L13_1024_64 L14_1024_3",
    ("stylegan3-t", 512): "L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_84_512 L6_148_512 L7_148_483 "
                          "L8_276_323 L9_276_215 L10_532_144 L11_532_96 L12_532_64 L13_512_64 L14_512_3",
    ("stylegan3-r", 512): "L0_36_1024 L1_36_1024 L2_52_1024 L3_52_1024 L4_84_1024 L5_84_1024 L6_148_1024 L7_148_967 "
                          "L8_276_645 L9_276_431 L10_532_287 L11_532_192 L12_532_128 L13_512_128 L14_512_3",
    ("stylegan3-t", 256): "L0_36_512 L1_36_512 L2_36_512 L3_52_512 L4_52_512 L5_84_512 L6_84_512 L7_148_512 "
                          "L8_148_512 L9_148_362 L10_276_256 L11_276_181 L12_276_128 L13_256_128 L14_256_3",
    ("stylegan3-r", 256): "L0_36_1024 L1_36_1024 L2_36_1024 L3_52_1024 L4_52_1024 L5_84_1024 L6_84_1024 L7_148_1024 "
                          "L8_148_1024 L9_148_724 L10_276_512 L11_276_362 L12_276_256 L13_256_256 L14_256_3",
}


@pytest.mark.parametrize("config,res", sorted(HAND))
def test_schedule_names_and_resampling(config, res):
    cfg = stylegan3_config(config, res).synthesis
    layers = synthesis_schedule(res, 3, cfg)
    assert " ".join(s.name for s in layers) == HAND[(config, res)]
    for i, s in enumerate(layers):
        # The rate doubles exactly where the size grows: up 4 / down 2 there, up 2 / down 2 elsewhere, ToRGB 1 / 1.
        grows = s.out_sampling_rate == 2 * s.in_sampling_rate
        assert (s.up_factor, s.down_factor) == ((1, 1) if i == 14 else (4, 2) if grows else (2, 2))
        assert s.up_taps == (1 if i == 14 else 6 * s.up_factor) and s.down_taps == (1 if i == 14 else 12)
        assert s.conv_kernel == (1 if i == 14 or config == "stylegan3-r" else 3)
        assert s.down_radial == (config == "stylegan3-r" and i < 12)  # radial only where not critically sampled
        assert s.is_critically_sampled == (i >= 12)
        assert s.use_fp16 == (s.out_sampling_rate * 16 > res)
        assert s.out_cutoff == pytest.approx(2 * (res / 4) ** (min(i, 12) / 12))
    assert layers[-1].out_cutoff == res / 2 and layers[12].in_cutoff == pytest.approx(2 * (res / 4) ** (11 / 12))


def test_schedule_of_the_fixture_config():
    """sg3t_32: 32², channel_base 2048, channel_max 64 — all numbers by hand."""
    layers = synthesis_schedule(32, 3, SynthesisConfig(channel_base=2048, channel_max=64))
    # log2(2 f_t[i]) = 3.1 + 2.2 i / 12: s = 16 for i <= 4, then 32.
    assert [s.out_sampling_rate for s in layers] == [16] * 5 + [32] * 10
    assert [s.out_size for s in layers] == [36] * 5 + [52] * 8 + [32] * 2
    assert [s.out_channels for s in layers] == [64] * 14 + [3]
    l0, l5, l12, l13, l14 = layers[0], layers[5], layers[12], layers[13], layers[14]
    assert (l0.tmp_sampling_rate, l0.up_factor, l0.down_factor, l0.up_taps, l0.down_taps) == (32, 2, 2, 12, 12)
    assert (l5.tmp_sampling_rate, l5.up_factor, l5.down_factor, l5.up_taps, l5.down_taps) == (64, 4, 2, 24, 12)
    assert (l14.tmp_sampling_rate, l14.up_factor, l14.down_factor, l14.up_taps, l14.down_taps) == (32, 1, 1, 1, 1)
    # pad_total = (out - 1) down + 1 - (in + k - 1) up + up_taps + down_taps - 2; lo = (pad_total + up) // 2.
    assert l0.padding == (9, 8, 9, 8)  # 71 - 76 + 22 = 17
    assert l5.padding == (-6, -9, -6, -9)  # 103 - 152 + 34 = -15
    assert l12.padding == (9, 8, 9, 8)
    assert l13.padding == (-11, -12, -11, -12)  # 63 - 108 + 22 = -23
    assert l14.padding == (0, 0, 0, 0)
    # f_h = max(f_t, s / 2) - f_c: layer 0 has f_t = 2^2.1 < 8, so f_h = 8 - 2.
    assert l0.in_half_width == pytest.approx(6) and l0.in_cutoff == 2
    assert l13.out_cutoff == 16 and l13.out_half_width == pytest.approx(16 * 2**0.3 - 16)
    assert l14.out_half_width == pytest.approx(16 * 2**0.3 - 16)
    with pytest.raises(ValueError, match="num_critical"):
        synthesis_schedule(32, 3, SynthesisConfig(num_layers=2, num_critical=2))


# ----------------------------------------------------------------------------- networks


def _tiny(config: str, c_dim: int = 0) -> GeneratorConfig:
    cfg = stylegan3_config(config, 16, z_dim=8, w_dim=8, c_dim=c_dim, channel_base=128, channel_max=8)
    cfg.synthesis.num_layers = 4
    cfg.synthesis.num_critical = 1
    cfg.synthesis.margin_size = 2
    return cfg


@pytest.mark.parametrize("config", ["stylegan3-t", "stylegan3-r"])
def test_layers_train_the_fourier_features_and_track_magnitudes(config):
    torch.manual_seed(0)
    G = Generator(_tiny(config))
    assert G.num_ws == 6 and G.mapping.num_ws == 6 and len(G.synthesis.layer_names) == 5
    img = G(torch.randn([2, 8]), None, update_emas=True)
    img.square().mean().backward()
    grads = {n: p.grad for n, p in G.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["synthesis.input.weight"].abs().sum() > 0
    # update_emas moved the input magnitudes (and the W average: test_contract.py).
    assert all(getattr(G.synthesis, n).magnitude_ema != 1 for n in G.synthesis.layer_names)


def test_config_r_uses_radial_filters_and_1x1_convs():
    G = Generator(_tiny("stylegan3-r"))
    layers = [getattr(G.synthesis, n) for n in G.synthesis.layer_names]
    for layer in layers:
        assert layer.weight.shape[2:] == (1, 1)
    radial = [layer.down_filter.ndim == 2 for layer in layers[:-1]]
    assert radial == [True, True, True, False]  # the critically sampled layer keeps a separable filter
    assert all(layer.up_filter.ndim == 1 for layer in layers[:-1])
    assert layers[-1].up_filter is None and layers[-1].down_filter is None
    T = Generator(_tiny("stylegan3-t"))
    assert all(getattr(T.synthesis, n).weight.shape[2:] == (3, 3) for n in T.synthesis.layer_names[:-1])
    assert all(getattr(T.synthesis, n).down_filter.ndim == 1 for n in T.synthesis.layer_names[:-1])
    r = stylegan3_config("stylegan3-r", 1024).synthesis
    assert (r.channel_base, r.channel_max, r.conv_kernel, r.use_radial_filters) == (65536, 1024, 1, True)
    with pytest.raises(ValueError, match="stylegan3-t"):
        stylegan3_config("stylegan3-x", 256)


def test_input_transform():
    torch.manual_seed(1)
    G = Generator(_tiny("stylegan3-t")).eval()
    assert torch.equal(G.synthesis.input.affine.weight, torch.zeros(4, 8))
    assert G.synthesis.input.affine.bias.tolist() == [1, 0, 0, 0]
    z = torch.randn([2, 8])
    with torch.no_grad():
        ws = G.mapping(z, None)
        a = G.synthesis(ws)
        G.synthesis.input.transform.copy_(torch.tensor([[1.0, 0, 0.1], [0, 1, 0], [0, 0, 1]]))
        assert not torch.equal(G.synthesis(ws), a)
    with pytest.raises(ValueError, match=r"ws: expected shape \[\?, 6, 8\]"):
        G.synthesis(ws[:, :5])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")

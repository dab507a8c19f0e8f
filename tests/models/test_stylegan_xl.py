"""StyleGAN-XL generator: the growth function against values worked out by hand from SuperresGenerator's formulas,
the paper's layer counts, the history check, the class embedding and the mapping's label and truncation semantics
against naive re-statements of the official code. What every generator keeps (spec round trip, save and load,
num_ws, truncation, label errors, float64-free forward and backward) is checked on the registered tiny XL
configs by tests/models/test_contract.py."""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources

import pytest
import torch

from stylegan.models import stylegan3
from stylegan.models.stylegan_xl import (
    Generator, GeneratorConfig, GrowthStage, MappingConfig, StageHistory, SynthesisConfig, drop_critical, grow, grow_generator,
    history_layers, imagenet_class_embedding, stem_layers, superres_head, xl_config,
)

# The shared fixtures' stem (xl_g16_cond): 16², 10 layers, channel_base 1024, channel_max 96.
STEM = stylegan3.SynthesisConfig(channel_base=1024, channel_max=96, num_layers=10)


def tiny(c_dim: int = 4, stages: tuple[int, ...] = (), class_embed: str = "random", embed_classes: int = 8) -> GeneratorConfig:
    """A small XL generator (8² stem) for fast tests."""
    history = StageHistory(stem_resolution=8, stem=stylegan3.SynthesisConfig(channel_base=256, channel_max=16, num_layers=4),
                           stages=[GrowthStage(f, 3) for f in stages])
    layers, res = history_layers(history, 3)
    return GeneratorConfig(z_dim=8, c_dim=c_dim, w_dim=16, img_resolution=res, synthesis=SynthesisConfig(layers=layers), history=history,
                           mapping=MappingConfig(embed_classes=embed_classes, embed_features=6, class_embed=class_embed))


def with_layers(cfg: GeneratorConfig, layers: list, **changes) -> GeneratorConfig:
    return dataclasses.replace(cfg, synthesis=SynthesisConfig(layers=layers), **changes)


# ----------------------------------------------------------------------------- growth


def test_stem_keeps_the_non_critical_layers():
    stem = stem_layers(16, 3, STEM)
    assert [lc.name for lc in stem][-3:] == ["L8_36_64", "L9_16_64", "L10_16_3"]
    kept = drop_critical(stem)
    assert [lc.name for lc in kept] == [f"L{i}_{s}" for i, s in enumerate(["36_96"] * 6 + ["36_91", "36_76"])]


def test_first_head_layer_has_the_identity_spec():
    kept = drop_critical(stem_layers(16, 3, STEM))
    first = superres_head(kept[-1], len(kept) + 1, 32, 7, STEM, 3)[0]
    last = kept[-1]
    assert first.name == "L9_36_76"  # numbered from len(kept) + 1: L8 does not exist
    assert (first.in_cutoff, first.out_cutoff) == (last.out_cutoff, last.out_cutoff)
    assert (first.in_half_width, first.out_half_width) == (last.out_half_width, last.out_half_width)
    assert (first.in_sampling_rate, first.out_sampling_rate, first.in_channels, first.out_channels) == (16, 16, 76, 76)


# Hand-worked from compute_superres_filterparams, starting at the fixture stem's last kept layer L7_36_76:
# f_c0 = 6.727171322029716, f_t0 = f_h + f_c = 2.1493844545130445 + 6.727171322029716 = 8.876555776542760,
# f_c[i] = f_c0 (res/2 / f_c0)^e_i, f_t[i] = f_t0 (res/2 · 2^0.3 / f_t0)^e_i, e_i = min(i / (H - 2), 1),
# s[i] = 2^ceil(log2(min(2 f_t[i], res))) with s[0] = 16, size = s + 20 (res for the last two),
# channels = rint(min(512 / f_c[i], 96)) with channels[0] = 76 and 3 for ToRGB.
# x4 (16 -> 64), H = 7: f_t[1] = 8.8766 · 4.4382^0.2 = 11.96 -> s = 32; f_t[2] = 16.11 -> 64 onwards;
#   f_c = 6.7272, 9.1896, 12.553, 17.148, 23.425, 32, 32, 32 -> channels 76, 56 (55.7), 41 (40.8), 30 (29.9), 22 (21.9), 16, 16, 3.
# x8 (16 -> 128), H = 7: f_t[1] = 8.8766 · 8.8765^0.2 = 13.74 -> 32; f_t[2] = 21.26 -> 64; f_t[3] = 32.90 -> 128 onwards;
#   f_c = 6.7272, 10.556, 16.564, 25.992, 40.786, 64, 64, 64 -> channels 76, 49 (48.50), 31 (30.9), 20 (19.7), 13 (12.55), 8, 8, 3.
# x8, H = 4: e = 0, 1/2, 1, 1, 1: f_c[1] = 6.7272 · 9.5137^0.5 = 20.749 -> channels 25 (24.7); f_t[1] = 8.8766 · 8.8765^0.5 = 26.45 -> 64.
HAND = {
    (4, 7): ("L9_36_76 L10_52_56 L11_84_41 L12_84_30 L13_84_22 L14_84_16 L15_64_16 L16_64_3",
             [16, 32, 64, 64, 64, 64, 64, 64], [6.727171, 9.189587, 12.553346, 17.148375, 23.425371, 32, 32, 32]),
    (8, 7): ("L9_36_76 L10_52_49 L11_84_31 L12_148_20 L13_148_13 L14_148_8 L15_128_8 L16_128_3",
             [16, 32, 64, 128, 128, 128, 128, 128], [6.727171, 10.556063, 16.564239, 25.992077, 40.78594, 64, 64, 64]),
    (8, 4): ("L9_36_76 L10_84_25 L11_148_8 L12_128_8 L13_128_3", [16, 64, 128, 128, 128], [6.727171, 20.749433, 64, 64, 64]),
}


@pytest.mark.parametrize("up,heads", sorted(HAND))
def test_growth_by_4_and_8_matches_the_formulas_by_hand(up, heads):
    names, rates, cutoffs = HAND[(up, heads)]
    layers, res = grow(stem_layers(16, 3, STEM), 16, GrowthStage(up, heads), STEM, 3)
    head = layers[8:]
    assert res == 16 * up and [lc.name for lc in layers[:8]] == [lc.name for lc in drop_critical(stem_layers(16, 3, STEM))]
    assert " ".join(lc.name for lc in head) == names
    assert [lc.out_sampling_rate for lc in head] == rates
    assert [lc.out_cutoff for lc in head] == pytest.approx(cutoffs, abs=1e-6)
    last_hw = res / 2 * 2**0.3 - res / 2  # f_h at the critically sampled end: f_t - f_c with s/2 = f_c
    assert head[-1].out_half_width == pytest.approx(last_hw)
    assert [lc.is_critically_sampled for lc in head] == [i >= heads - 2 for i in range(heads + 1)]
    assert all(lc.use_fp16 for lc in head)  # s * 2^4 > res for every rate >= res / 8
    # Head-layer defaults: only conv_kernel and radial filters come from the stem.
    assert {(lc.filter_size, lc.lrelu_upsampling, lc.conv_clamp, lc.magnitude_ema_beta) for lc in head} == {(6, 2, 256, 0.999)}
    for a, b in zip(layers, layers[1:]):
        assert (a.out_channels, a.out_size) == (b.in_channels, b.in_size)


def test_growth_by_2_twice_numbers_on_from_the_kept_layers():
    layers, res = grow(stem_layers(16, 3, STEM), 16, GrowthStage(2, 7), STEM, 3)
    layers, res = grow(layers, res, GrowthStage(2, 7), STEM, 3)
    names = [lc.name.split("_")[0] for lc in layers]
    # stem keeps L0-L7, stage 1 keeps L9-L13 (L14-L16 were critically sampled), stage 2 adds L14-L21.
    assert res == 64 and names == [f"L{i}" for i in [*range(8), *range(9, 14), *range(14, 22)]]
    assert layers[13].in_cutoff == layers[12].out_cutoff == layers[13].out_cutoff  # identity-spec first head layer again


def test_paper_layer_count_at_1024():
    """StyleGAN-XL paper §3.2 ("Reintroducing Progressive Growing"): a 16² stem of 11 layers, each stage cuts the
    last 2 layers and adds 7, the final 1024² stage adds only 5 -> 39 layers. In the official code: train.py /
    README stem `--syn_layers 10` (10 layers + ToRGB), `--head_layers 7` (train.py default) per x2 stage from
    32² to 512², `--head_layers 5` for 1024²; num_ws = layers + 1 (the Fourier features take one w)."""
    stages = [GrowthStage(2, 7)] * 5 + [GrowthStage(2, 5)]
    layers, res = history_layers(StageHistory(16, stylegan3.SynthesisConfig(num_layers=10, channel_base=65536, channel_max=1024), stages), 3)
    assert res == 1024 and len(layers) == 39 and len(layers) + 1 == 40
    assert layers[-1].name == "L39_1024_3" and "L8" not in {lc.name.split("_")[0] for lc in layers}  # one gap: L8
    cfg = xl_config(1024, final_head_layers=5)
    assert [lc.name for lc in cfg.synthesis.layers] == [lc.name for lc in layers]
    with pytest.raises(ValueError, match="head_layers must exceed 2"):
        grow(layers, 1024, GrowthStage(2, 2), STEM, 3)
    with pytest.raises(ValueError, match="up_factor"):
        grow(layers, 1024, GrowthStage(3, 7), STEM, 3)


# ----------------------------------------------------------------------------- config


def test_history_mismatch_is_refused():
    cfg = tiny(stages=(2,))
    layers = cfg.synthesis.layers
    bad = with_layers(cfg, [*layers[:-2], dataclasses.replace(layers[-2], out_cutoff=7.5), layers[-1]])
    with pytest.raises(ValueError, match=r"disagree with its stage history .*: layer L\d+_\w+: out_cutoff is 7.5"):
        Generator(bad)
    Generator(dataclasses.replace(bad, history=None))  # without a history the explicit layers are the truth
    with pytest.raises(ValueError, match="takes 16 channels of 28² but L0_28_16 gives 7"):
        Generator(with_layers(cfg, [dataclasses.replace(layers[0], out_channels=7), *layers[1:]], history=None))


def test_class_embedding_limits():
    with pytest.raises(ValueError, match="--class-embed random"):
        Generator(tiny(c_dim=9, embed_classes=8))
    with pytest.raises(ValueError, match="--class-embed random"):
        xl_config(32, c_dim=1200)
    cfg = xl_config(16, c_dim=1200, class_embed="random")
    assert cfg.mapping.embed_classes == 1200


# ----------------------------------------------------------------------------- class embedding


def test_shipped_class_embedding():
    folder = resources.files("stylegan.models") / "builtin" / "xl_class_embedding"
    data = (folder / "tf_efficientnet_lite0.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "3f7d2001624bc762f947220861c9424f87a5a028e5fc8bdbe505a76d02870574"
    assert "MIT License" in (folder / "LICENSE").read_text() and "4241ff9" in (folder / "README.md").read_text()
    w = imagenet_class_embedding()
    assert w.shape == (1000, 320) and w.dtype == torch.float32
    G = Generator(dataclasses.replace(tiny(), mapping=MappingConfig(class_embed="imagenet")))
    assert torch.equal(G.mapping.embed.weight, w)


# ----------------------------------------------------------------------------- mapping semantics


def naive_mapping(G: Generator, z: torch.Tensor, c: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """The official MappingNetwork.forward, sample by sample."""
    m = G.mapping
    out = []
    for i in range(z.shape[0]):
        x = z[i : i + 1] * (z[i : i + 1].square().mean(1, keepdim=True) + 1e-8).rsqrt()
        label = int(torch.argmax(c[i]))
        y = m.embed_proj(m.embed.weight[label : label + 1])
        y = y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        x = torch.cat([x, y], dim=1)
        for idx in range(m.num_layers):
            x = getattr(m, f"fc{idx}")(x)
        x = x.repeat(G.num_ws, 1)
        n = G.num_ws if cutoff is None else cutoff
        x[:n] = m.w_avg[label] + (x[:n] - m.w_avg[label]) * psi
        out.append(x)
    return torch.stack(out)


def test_labels_enter_through_argmax_and_truncation_is_class_wise():
    torch.manual_seed(0)
    G = Generator(tiny())
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
        z = torch.randn(5, 8)
        c = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 0], [0.2, 0.5, 0.3, 0], [0, 3.0, 0, 0], [0.5, 0, 0, 0.5]])
        for psi, cutoff in ((1, None), (0.7, None), (0.5, 3)):
            assert torch.allclose(G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff), naive_mapping(G, z, c, psi, cutoff), atol=1e-5)
        hard = torch.nn.functional.one_hot(torch.tensor([2, 0, 1, 1, 0]), 4).float()  # argmax: all-zero row -> 0, ties -> first
        assert torch.equal(G.mapping(z, c, truncation_psi=0.7), G.mapping(z, hard, truncation_psi=0.7))
    with pytest.raises(ValueError, match=r"c must have shape \[N, 4\]"):
        G.mapping(z, None)


def test_update_emas_tracks_each_class_sample_by_sample():
    torch.manual_seed(1)
    G = Generator(tiny())
    z = torch.randn(3, 8)
    c = torch.nn.functional.one_hot(torch.tensor([1, 1, 3]), 4).float()
    with torch.no_grad():
        before = G.mapping.w_avg.clone()
        w = G.mapping(z, c)[:, 0]
        G.mapping(z, c, update_emas=True)
    beta = G.mapping.w_avg_beta
    want = before.clone()
    for i, label in enumerate([1, 1, 3]):
        want[label] = w[i] + (want[label] - w[i]) * beta
    assert torch.allclose(G.mapping.w_avg, want, atol=1e-6) and torch.equal(G.mapping.w_avg[[0, 2]], before[[0, 2]])


def test_unconditional_network_keeps_the_embedding_and_a_global_w_avg():
    sd = Generator(tiny(c_dim=0)).state_dict()
    assert sd["mapping.embed.weight"].shape == (8, 6) and "mapping.embed_proj.weight" not in sd
    assert sd["mapping.w_avg"].shape == (16,) and sd["mapping.fc0.weight"].shape == (16, 8)
    assert Generator(tiny(c_dim=4)).state_dict()["mapping.w_avg"].shape == (4, 16)  # one average per class


def test_grow_generator_keeps_the_stem_weights():
    torch.manual_seed(2)
    G = Generator(tiny())
    big = grow_generator(G, GrowthStage(2, 3))
    assert big.img_resolution == 16 and big.config.history.stages == [GrowthStage(2, 3)]
    assert big.num_ws == len(big.config.synthesis.layers) + 1 == 2 + 4 + 1  # 2 kept + 3 head + ToRGB layers, one w each, + 1 for the Fourier features
    kept = {lc.name for lc in drop_critical(G.config.synthesis.layers)}
    small, grown = G.state_dict(), big.state_dict()
    for key, value in small.items():
        if key.startswith(("mapping.", "synthesis.input.")) or key.split(".")[1] in kept:
            assert torch.equal(grown[key], value), key
    assert {k.split(".")[1] for k in grown if k.startswith("synthesis.L")} - {"input"} == {lc.name for lc in big.config.synthesis.layers}
    with torch.no_grad():
        assert big(torch.randn(1, 8), torch.eye(4)[:1]).shape == (1, 3, 16, 16)

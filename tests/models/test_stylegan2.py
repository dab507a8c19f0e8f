"""StyleGAN2 networks, what is their own (tests/models/test_contract.py checks what every network keeps): the three
architectures at 64x64, the number of ws, label embeddings, noise, fused modulation, precision policy, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import NoFloat64

from stylegan.models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig


def _pair(res: int, arch_g: str = "skip", arch_d: str = "resnet", c_dim: int = 0, **kw) -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, mapping=MappingConfig(num_layers=2),
                                  synthesis=SynthesisConfig(channel_base=res * 16, channel_max=32, architecture=arch_g, **kw)))
    d = Discriminator(DiscriminatorConfig(c_dim=c_dim, img_resolution=res, channel_base=res * 16, channel_max=32, architecture=arch_d))
    return g, d


@pytest.mark.parametrize("res", [64])  # 32x32: test_contract.py
@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_forward_backward(res, arch):
    G, D = _pair(res, arch, arch)
    z = torch.randn(4, 16)
    with NoFloat64():
        img = G(z, None)
        assert img.shape == (4, 3, res, res) and img.dtype == torch.float32
        logits = D(img, None)
        assert logits.shape == (4, 1)
        torch.nn.functional.softplus(-logits).mean().backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        if name.endswith("noise_strength"):
            continue  # zero-initialised: its gradient can be exactly zero
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.mapping.fc0.weight.grad.abs().sum() > 0


def test_num_ws():
    G, _ = _pair(64)
    assert G.num_ws == 2 * 5  # log2(64) * 2 - 2
    assert G.config.mapping.w_avg_beta == 0.998  # the W-average EMA itself: test_contract.py


def test_conditional_networks_embed_the_labels():
    G, D = _pair(32, c_dim=4)
    assert "mapping.embed.weight" in dict(G.named_parameters()) and "mapping.embed.weight" in dict(D.named_parameters())


def test_noise_modes():
    G, _ = _pair(32)
    for layer in G.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    ws = G.mapping(torch.randn(2, 16), None)
    const = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), const, rtol=0, atol=0)
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), const)
    assert not torch.allclose(G.synthesis(ws, noise_mode="none"), const)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")


def test_fused_and_unfused_modconv_agree():
    G, _ = _pair(32, arch_g="resnet")
    ws = G.mapping(torch.randn(3, 16), None)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const", fused_modconv=True),
                               G.synthesis(ws, noise_mode="const", fused_modconv=False), rtol=1e-4, atol=1e-5)


def test_precision_policy_on_cpu():
    """fp16 blocks stay fp32 off CUDA unless the network comes from code that ran fp16 everywhere."""
    g32, _ = _pair(32, num_fp16_res=2)
    g16, _ = _pair(32, num_fp16_res=2, fp16_cuda_only=False)
    g16.load_state_dict(g32.state_dict())
    ws = g32.mapping(torch.randn(2, 16), None)
    a, b = g32.synthesis(ws, noise_mode="const"), g16.synthesis(ws, noise_mode="const")
    assert a.dtype == b.dtype == torch.float32
    assert 0 < (a - b).abs().max() < 0.05  # fp16 rounding, not garbage
    torch.testing.assert_close(g16.synthesis(ws, noise_mode="const", force_fp32=True), a, rtol=0, atol=0)


def test_mbstd_batch_not_divisible_is_clear():
    _, D = _pair(32)
    with pytest.raises(ValueError, match="batch size 6 is not divisible by the group size 4"):
        D(torch.randn(6, 3, 32, 32), None)
    assert D(torch.randn(3, 3, 32, 32), None).shape == (3, 1)  # group clamps to the batch


def test_bad_resolution():
    with pytest.raises(ValueError, match="power of two"):
        Generator(GeneratorConfig(img_resolution=48))


def test_config_round_trip_of_optional_and_string_values():
    cfg = GeneratorConfig(z_dim=8, synthesis=SynthesisConfig(conv_clamp=None, fused_modconv_default="inference_only"))
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"generator config\.synthesis: unknown field\(s\) chanel_base"):
        GeneratorConfig.from_dict({"synthesis": {"chanel_base": 1}})
    with pytest.raises(ValueError, match="fused_modconv_default must be one of"):
        SynthesisConfig(fused_modconv_default="sometimes")

"""StyleGAN (2019) and the StyleGAN2 paper's revised growing networks: layer math against hand-written
formulas, progressive-growing blends, block skipping, shapes and gradients while growing (tests/models/test_contract.py
checks what every network keeps: spec and state round trips, truncation, labels, gradients)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import NoFloat64
import torch.nn.functional as F

from stylegan.models import stylegan1
from stylegan.models.stylegan1 import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, StyleLayer,
                                       SynthesisConfig)


def _g(style: str = "adain", res: int = 32, c_dim: int = 0, **kw) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(style=style, channel_base=256, channel_max=32, **kw))
    G = Generator(cfg).eval()
    with torch.no_grad():  # nonzero noise strengths and biases, so every term of the layers matters
        for name, p in G.named_parameters():
            if name.endswith(("noise_strength", "bias")) and "affine" not in name:
                p.copy_(0.2 * torch.randn(p.shape))
    return G


def _d(style: str = "basic", res: int = 32, c_dim: int = 0, **kw) -> Discriminator:
    torch.manual_seed(1)
    D = Discriminator(DiscriminatorConfig(c_dim=c_dim, img_resolution=res, style=style, channel_base=256, channel_max=32, **kw)).eval()
    with torch.no_grad():
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape))
    return D


def _ws(G: Generator, n: int = 2) -> torch.Tensor:
    return torch.randn(n, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(7))


# ----------------------------------------------------------------------------- layer math


def test_adain_epilogue_and_noise_formula():
    G = _g()
    layer: StyleLayer = G.synthesis.b8.conv1
    assert isinstance(layer, StyleLayer)
    x = torch.randn(3, 32, 8, 8)
    w = torch.randn(3, 16)
    y = layer(x, w, noise_mode="const")
    # by hand: conv (gain sqrt2 / sqrt(fan_in)) -> + noise * weight -> + bias -> lrelu -> instance norm -> AdaIN
    h = F.conv2d(x, layer.conv.weight * math.sqrt(2) / math.sqrt(32 * 9), padding=1)
    h = h + layer.noise_const[None, None] * layer.noise_strength[None, :, None, None]
    h = F.leaky_relu(h + layer.bias[None, :, None, None], 0.2)
    h = (h - h.mean([2, 3], keepdim=True)) / torch.sqrt(h.var([2, 3], unbiased=False, keepdim=True) + 1e-8)
    s = w @ (layer.affine.weight / math.sqrt(16)).t() + layer.affine.bias
    expected = h * (1 + s[:, :32, None, None]) + s[:, 32:, None, None]
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    # noise_mode 'none' drops exactly the noise term; 'random' draws per-sample noise
    h0 = F.conv2d(x, layer.conv.weight * math.sqrt(2) / math.sqrt(32 * 9), padding=1) + layer.bias[None, :, None, None]
    h0 = F.leaky_relu(h0, 0.2)
    h0 = (h0 - h0.mean([2, 3], keepdim=True)) / torch.sqrt(h0.var([2, 3], unbiased=False, keepdim=True) + 1e-8)
    torch.testing.assert_close(layer(x, w, noise_mode="none"), h0 * (1 + s[:, :32, None, None]) + s[:, 32:, None, None], rtol=1e-4, atol=1e-4)
    r = layer(x[:1].expand(2, -1, -1, -1), w[:1].expand(2, -1), noise_mode="random")
    assert not torch.allclose(r[0], r[1])


def test_const_layer_and_init():
    G = _g()
    b4 = G.synthesis.b4
    assert torch.equal(Generator(G.config).synthesis.b4.const, torch.ones(32, 4, 4))  # TF: ones
    assert b4.conv0.in_channels == 0 and not hasattr(b4.conv0, "conv")
    assert torch.equal(Generator(G.config).synthesis.b8.conv0.noise_strength, torch.zeros(32))  # TF: zeros
    assert G.synthesis.b8.conv0.noise_const.shape == (8, 8) and G.synthesis.b4.conv0.noise_const.shape == (4, 4)


def test_mapping_equalized_lr_math():
    G = _g()
    m = G.mapping
    z = torch.randn(5, 16)
    x = z / torch.sqrt(z.square().mean(1, keepdim=True) + 1e-8)
    for i in range(2):
        fc = getattr(m, f"fc{i}")
        # TF dense: he_std = sqrt(2)/sqrt(fan_in), runtime coef he_std * lrmul; bias * lrmul; plain lrelu
        x = x @ (fc.weight * (math.sqrt(2) / math.sqrt(16) * 0.01)).t() + fc.bias * 0.01
        x = torch.where(x >= 0, x, 0.2 * x)
    torch.testing.assert_close(m(z, None), x[:, None].expand(-1, G.num_ws, -1), rtol=1e-5, atol=1e-6)
    assert Generator(G.config).mapping.fc0.weight.std() > 50  # stored at std 1 / lrmul


def test_conditional_mapping_concatenates_before_pixel_norm():
    G = _g(c_dim=3)
    z, c = torch.randn(4, 16), torch.eye(3)[[0, 1, 2, 0]]
    x = torch.cat([z, c @ G.mapping.embed], 1)
    x = x / torch.sqrt(x.square().mean(1, keepdim=True) + 1e-8)
    fc0 = G.mapping.fc0
    h = F.leaky_relu(x @ (fc0.weight * math.sqrt(2) / math.sqrt(32) * 0.01).t() + fc0.bias * 0.01, 0.2)
    torch.testing.assert_close(G.mapping.fc1(h), G.mapping(z, c)[:, 0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"c must have shape \[N, 3\]"):
        G.mapping(z, None)


def test_blur_filter():
    x = torch.randn(2, 3, 6, 6)
    f = stylegan1._blur_filter([1, 2, 1])
    k = torch.tensor([1.0, 2.0, 1.0])
    torch.testing.assert_close(f, torch.outer(k, k) / 16)
    expected = F.conv2d(F.pad(x, [1, 1, 1, 1]), (torch.outer(k, k) / 16).expand(3, 1, 3, 3), groups=3)
    torch.testing.assert_close(stylegan1.blur2d(x, f), expected)
    # asymmetric taps: TF depthwise_conv2d is a correlation with 'SAME' padding
    f2 = stylegan1._blur_filter([1, 3])
    y = stylegan1.blur2d(x, f2)
    manual = sum(f2[i, j] * F.pad(x, [0, 1, 0, 1])[:, :, i : i + 6, j : j + 6] for i in range(2) for j in range(2))
    torch.testing.assert_close(y, manual)


def test_fused_up_and_down_convs_match_the_separate_ops():
    torch.manual_seed(3)
    x = torch.randn(2, 8, 6, 6)
    up_fused = stylegan1.Conv2d(8, 5, 3, up=True, fused=True)
    up_plain = stylegan1.Conv2d(8, 5, 3, up=True, fused=False)
    with torch.no_grad():
        up_plain.weight.copy_(up_fused.weight.flip([2, 3]))  # the transposed conv applies the kernel flipped
        up_plain.bias.copy_(torch.randn(5))
        up_fused.bias.copy_(up_plain.bias)
    torch.testing.assert_close(up_fused(x), up_plain(x), rtol=1e-5, atol=1e-5)
    assert up_plain(x).shape == (2, 5, 12, 12)
    down_fused = stylegan1.Conv2d(8, 5, 3, down=True, fused=True, activation="lrelu")
    down_plain = stylegan1.Conv2d(8, 5, 3, down=True, fused=False, activation="lrelu")
    with torch.no_grad():
        down_plain.weight.copy_(down_fused.weight)
    torch.testing.assert_close(down_fused(x), down_plain(x), rtol=1e-5, atol=1e-5)
    plain = F.avg_pool2d(F.conv2d(x, down_plain.weight * math.sqrt(2) / math.sqrt(72), padding=1), 2)
    torch.testing.assert_close(down_plain(x), F.leaky_relu(plain, 0.2))


def test_fused_scale_auto_from_128():
    cfg = SynthesisConfig(channel_base=1024, channel_max=8)
    syn = stylegan1.SynthesisNetwork(4, 256, 3, cfg)
    assert [getattr(syn, f"b{r}").conv0.conv.fused for r in (8, 64, 128, 256)] == [False, False, True, True]
    d = Discriminator(DiscriminatorConfig(img_resolution=256, channel_base=1024, channel_max=8))
    assert [getattr(d, f"b{r}").conv1.fused for r in (8, 64, 128, 256)] == [False, False, True, True]


# ----------------------------------------------------------------------------- progressive growing


def _rgb(G, res, x):
    return getattr(G.synthesis, f"b{res}").torgb(x)


def _features(G, ws):
    """x after every block, the full chain (noise 'const')."""
    out, x = {}, None
    for res in G.synthesis.block_resolutions:
        x = getattr(G.synthesis, f"b{res}")(x, ws, "const")
        out[res] = x
    return out


def _linear_structure(G, ws, lod):
    """TF's 'linear' structure, computed in full: img = lerp_clip(torgb_res(x), upscale(img), lod - level)."""
    feats = _features(G, ws)
    img = _rgb(G, 4, feats[4])
    for res in G.synthesis.block_resolutions[1:]:
        level = G.synthesis.img_resolution_log2 - int(math.log2(res))
        t = min(max(lod - level, 0.0), 1.0)
        img = torch.lerp(_rgb(G, res, feats[res]), stylegan1.upscale2d(img), t)
    return img


@torch.no_grad()
def test_fade_in_half_lod_by_hand():
    G = _g()
    ws = _ws(G)
    G.synthesis.lod.fill_(1.5)  # 32x32 net: the 16x16 level fades in over the 8x8 one
    img = G.synthesis(ws, noise_mode="const")
    feats = _features(G, ws)
    half = 0.5 * _rgb(G, 16, feats[16]) + 0.5 * stylegan1.upscale2d(_rgb(G, 8, feats[8]))
    torch.testing.assert_close(img, stylegan1.upscale2d(half, 2), rtol=1e-6, atol=1e-6)
    assert img.shape == (2, 3, 32, 32)


@torch.no_grad()
@pytest.mark.parametrize("lod", [0.0, 0.25, 1.0, 1.5, 2.0, 2.75, 3.0, 5.0])
def test_skipping_unused_blocks_equals_full_linear_structure(lod):
    G = _g()
    ws = _ws(G)
    G.synthesis.lod.fill_(lod)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), _linear_structure(G, ws, lod))


@torch.no_grad()
def test_integer_lod_equals_truncated_network():
    G = _g()
    ws = _ws(G)
    G.synthesis.lod.fill_(1.0)
    small = _g(res=16)
    small.load_state_dict({k: v for k, v in G.state_dict().items() if not k.startswith("synthesis.b32.")}, strict=False)
    small.synthesis.lod.zero_()
    # the 32x32 net at lod 1 is the 16x16 net, nearest-upscaled (same ws: the first 6 layers)
    ref = small.synthesis(ws[:, : small.num_ws], noise_mode="const")
    assert torch.equal(G.synthesis(ws, noise_mode="const"), stylegan1.upscale2d(ref))


@torch.no_grad()
def test_skipped_blocks_are_not_computed():
    G = _g()
    calls = []
    for res in G.synthesis.block_resolutions:
        getattr(G.synthesis, f"b{res}").register_forward_hook(lambda m, i, o: calls.append(m.resolution))
    G.synthesis.lod.fill_(2.0)
    G.synthesis(_ws(G), noise_mode="const")
    assert calls == [4, 8]


@torch.no_grad()
def test_demod_fade_in_uses_fir_upsampling():
    from stylegan.ops import upsample2d

    G = _g("demod")
    ws = _ws(G)
    G.synthesis.lod.fill_(0.5)
    feats = _features(G, ws)
    b16, b32 = G.synthesis.b16, G.synthesis.b32
    lower = upsample2d(b16.torgb(feats[16], ws[:, 5]), G.synthesis.resample_filter)
    expected = 0.5 * b32.torgb(feats[32], ws[:, 7]) + 0.5 * lower
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), expected, rtol=1e-5, atol=1e-5)
    G.synthesis.lod.fill_(3.0)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), stylegan1.upscale2d(G.synthesis.b4.torgb(feats[4], ws[:, 1]), 8))


def _d_linear_structure(D, img, lod):
    """TF's 'linear' D: x = lerp_clip(block(x), fromrgb(downscale(img)), lod - level), all blocks computed."""
    x = getattr(D, f"b{D.img_resolution}").fromrgb(img)
    for res in D.block_resolutions:
        level = D.img_resolution_log2 - int(math.log2(res))
        x = getattr(D, f"b{res}")(x)
        img = F.avg_pool2d(img, 2)
        x = torch.lerp(x, getattr(D, f"b{res // 2}").fromrgb(img), min(max(lod - level, 0.0), 1.0))
    return D.b4(x)


@torch.no_grad()
@pytest.mark.parametrize("style", ["basic", "revised"])
@pytest.mark.parametrize("lod", [0.0, 0.5, 1.0, 1.25, 3.0])
def test_d_lod_blending_equals_full_linear_structure(style, lod):
    D = _d(style)
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    D.lod.fill_(lod)
    assert torch.equal(D(img), _d_linear_structure(D, img, lod))


@torch.no_grad()
def test_d_half_lod_by_hand():
    D = _d()
    img = torch.randn(4, 3, 32, 32)
    D.lod.fill_(0.5)
    x = 0.5 * D.b32(D.b32.fromrgb(img)) + 0.5 * D.b16.fromrgb(F.avg_pool2d(img, 2))
    torch.testing.assert_close(D(img), D.b4(D.b8(D.b16(x))), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_d_epilogue_and_label_conditioning():
    D = _d(c_dim=3)
    x = torch.randn(4, 32, 4, 4)
    h = torch.cat([x, torch.full([4, 1, 4, 4], float(torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()))], 1)
    h = F.leaky_relu(F.conv2d(h, D.b4.conv.weight * math.sqrt(2) / math.sqrt(33 * 9), padding=1) + D.b4.conv.bias[:, None, None], 0.2)
    h = F.leaky_relu(h.flatten(1) @ (D.b4.fc.weight * math.sqrt(2) / math.sqrt(512)).t() + D.b4.fc.bias, 0.2)
    h = h @ (D.b4.out.weight / math.sqrt(32)).t() + D.b4.out.bias  # Dense1: gain 1, max(c_dim, 1) outputs
    torch.testing.assert_close(D.b4(x), h, rtol=1e-5, atol=1e-5)
    img, c = torch.randn(4, 3, 32, 32), torch.eye(3)[[0, 1, 2, 2]]
    out = D(img, c)
    assert out.shape == (4, 1)
    with pytest.raises(ValueError, match="conditional"):
        D(img, None)


def test_d_minibatch_group_must_divide_batch():
    D = _d()
    with pytest.raises(ValueError, match="not divisible by the group size 4"):
        D(torch.randn(6, 3, 32, 32))
    assert D(torch.randn(2, 3, 32, 32)).shape == (2, 1)  # group = min(4, N), as TF
    assert not hasattr(_d(mbstd_group_size=1).b4, "mbstd") and _d(mbstd_group_size=1).b4.conv.in_channels == 32


# ----------------------------------------------------------------------------- whole networks


@pytest.mark.parametrize("g_style, d_style", [("adain", "basic"), ("demod", "revised")])
@pytest.mark.parametrize("lod", [0.0, 1.5])
def test_forward_backward(g_style, d_style, lod):
    G, D = _g(g_style), _d(d_style)
    G.train(), D.train()
    G.synthesis.lod.fill_(lod), D.lod.fill_(lod)
    with NoFloat64():
        img = G(torch.randn(4, 16), None, force_fp32=True)
        assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
        logits = D(img, None)
        assert logits.shape == (4, 1)
        F.softplus(-logits).mean().backward()
    used = [16, 8, 4] if lod else [32, 16, 8, 4]
    rgb_used = [16, 8] if lod else [32]  # the levels blended into the output / fed from the image
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        block = name.split(".")[1] if name.startswith("synthesis.") else name.split(".")[0]
        res = int(block[1:]) if block.startswith("b") else None
        live = res is None or (res in used and (res in rgb_used if (".torgb." in name or ".fromrgb." in name) else True))
        if not live:
            assert p.grad is None, name  # skipped blocks and unused levels stay out of the graph
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.mapping.fc0.weight.grad.abs().sum() > 0


def test_attributes_and_num_ws():
    for res in (8, 32, 64):
        G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=res, mapping=MappingConfig(num_layers=1),
                                      synthesis=SynthesisConfig(channel_base=64, channel_max=8)))
        assert G.num_ws == 2 * int(math.log2(res)) - 2 and G.mapping.num_ws == G.num_ws
        assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (8, 0, 8, res, 3)
    G = _g()
    assert G.synthesis.lod.dtype == torch.float32 and G.synthesis.lod.ndim == 0 and "synthesis.lod" in G.state_dict()
    assert "lod" in _d().state_dict()
    assert GeneratorConfig().mapping.w_avg_beta == 0.995  # TF dlatent_avg_beta (the W-average EMA itself: test_contract.py)
    assert stylegan1.nf(1, 8192, 512) == 512 and stylegan1.nf(5, 8192, 512) == 256 and stylegan1.nf(9, 8192, 512) == 16
    with pytest.raises(ValueError, match="style must be one of"):
        Generator(GeneratorConfig(synthesis=SynthesisConfig(style="skip")))
    with pytest.raises(ValueError, match="channel_base 64 gives no feature maps at 256x256; use channel_base >= 128"):
        Discriminator(DiscriminatorConfig(img_resolution=256, channel_base=64))

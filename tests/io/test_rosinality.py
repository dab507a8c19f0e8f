"""rosinality/stylegan2-pytorch checkpoints: round trips, an independent re-implementation of rosinality's
forward pass run on converted weights (which proves names, layouts and the absence of weight flips),
and the error messages for checkpoints or configs that do not fit."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.io.rosinality import channel_layout, from_rosinality, to_rosinality
from stylegan.models.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    MappingConfig,
    SynthesisConfig,
)

SQRT2 = math.sqrt(2)


def _configs(channel_base: int = 1024, channel_max: int = 64, res: int = 32, **synthesis) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """Configs exactly as `from_rosinality` infers them from shapes (defaults everywhere else)."""
    synthesis = {"num_fp16_res": 0, "conv_clamp": None, **synthesis}
    g = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=res, mapping=MappingConfig(num_layers=2),
                        synthesis=SynthesisConfig(channel_base=channel_base, channel_max=channel_max, **synthesis))
    d = DiscriminatorConfig(img_resolution=res, channel_base=channel_base, channel_max=channel_max,
                            num_fp16_res=synthesis["num_fp16_res"], conv_clamp=synthesis["conv_clamp"])
    return g, d


# Real rosinality layout would be channel_max 512 (channel_base 16384 * channel_multiplier); this one keeps
# channel_max=512 with tiny channels, plus settings rosinality cannot store (fp16 blocks, clamping).
SG3_STYLE = dict(channel_base=256, channel_max=512, num_fp16_res=2, conv_clamp=256)


def _perturb(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights with non-zero biases, noise strengths and W average."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("resample_filter"):
                continue
            if name.endswith("affine.bias"):
                t.copy_(1 + 0.4 * (torch.rand(t.shape, generator=gen) * 2 - 1))
            elif name.endswith(("bias", "noise_strength", "w_avg")):
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
            else:
                t.copy_(torch.randn(t.shape, generator=gen))
    return net.eval()


def _networks(g_cfg: GeneratorConfig, d_cfg: DiscriminatorConfig) -> dict[str, torch.nn.Module]:
    nets = {"G": _perturb(Generator(g_cfg), 1), "G_ema": _perturb(Generator(g_cfg), 2), "D": _perturb(Discriminator(d_cfg), 3)}
    nets["G"].mapping.w_avg.copy_(nets["G_ema"].mapping.w_avg)  # official training copies buffers G -> G_ema
    return nets


def _states(nets: dict[str, torch.nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {name: net.state_dict() for name, net in nets.items()}


def _reload(ckpt: dict) -> dict:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=True)


def _build(g_cfg, d_cfg, states) -> dict[str, torch.nn.Module]:
    out = {}
    for name, state in states.items():
        net = Discriminator(d_cfg) if name == "D" else Generator(g_cfg)
        net.load_state_dict(state, strict=True)
        out[name] = net.eval()
    return out


def _assert_same_states(a: dict[str, dict[str, torch.Tensor]], b: dict[str, dict[str, torch.Tensor]]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert a[name][key].shape == b[name][key].shape and torch.equal(a[name][key], b[name][key]), f"{name}.{key}"


def _assert_same_outputs(nets_a, nets_b) -> None:
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(5))
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        for name in ("G", "G_ema"):
            torch.testing.assert_close(nets_a[name](z, noise_mode="const"), nets_b[name](z, noise_mode="const"), rtol=0, atol=0)
        torch.testing.assert_close(nets_a["D"](img), nets_b["D"](img), rtol=0, atol=0)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("config", [{}, SG3_STYLE], ids=["inferable", "channel_max512"])
def test_round_trip_with_stored_configs(config):
    g_cfg, d_cfg = _configs(**config)
    nets = _networks(g_cfg, d_cfg)
    ckpt = _reload(to_rosinality(g_cfg, d_cfg, _states(nets)))  # weights_only=True must accept everything
    assert set(ckpt) == {"g", "g_ema", "d", "latent_avg", "stylegan_config"}
    json.dumps(ckpt["stylegan_config"])  # plain data
    assert torch.equal(ckpt["latent_avg"], nets["G_ema"].mapping.w_avg)
    g2, d2, states = from_rosinality(ckpt)
    assert g2 == g_cfg and d2 == d_cfg
    _assert_same_states(states, _states(nets))
    _assert_same_outputs(_build(g2, d2, states), nets)


def test_round_trip_inferred_configs_equal_the_originals():
    g_cfg, d_cfg = _configs()
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, d_cfg, _states(nets))
    del ckpt["stylegan_config"]  # as in a checkpoint written by rosinality itself
    g2, d2, states = from_rosinality(ckpt)
    assert g2 == g_cfg and d2 == d_cfg
    _assert_same_states(states, _states(nets))
    _assert_same_outputs(_build(g2, d2, states), nets)


def test_inferred_configs_of_the_channel_max512_style_network_are_equivalent():
    g_cfg, d_cfg = _configs(**SG3_STYLE)
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, d_cfg, _states(nets))
    del ckpt["stylegan_config"]
    g2, d2, states = from_rosinality(ckpt)
    # Shapes cannot tell channel_max 512 from 64 (the largest count), nor fp16 / clamping settings.
    assert (g2.synthesis.channel_base, g2.synthesis.channel_max, g2.synthesis.conv_clamp, g2.synthesis.num_fp16_res) == (256, 64, None, 0)
    assert (d2.channel_base, d2.channel_max) == (256, 64)
    _assert_same_states(states, _states(nets))
    _assert_same_outputs(_build(g2, d2, states), nets)


def test_generator_only_checkpoint_and_missing_latent_avg():
    g_cfg, d_cfg = _configs()
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, None, {"G_ema": nets["G_ema"].state_dict()})
    assert set(ckpt) == {"g_ema", "latent_avg", "stylegan_config"}
    del ckpt["latent_avg"], ckpt["stylegan_config"]
    g2, d2, states = from_rosinality(ckpt)
    assert g2 == g_cfg and d2 is None and set(states) == {"G_ema"}
    assert torch.equal(states["G_ema"]["mapping.w_avg"], torch.zeros(32))


@pytest.mark.parametrize(
    "channels, expected",
    [
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}, (32768, 512)),  # config-f
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}, (16384, 512)),  # channel_multiplier 1
        ({4: 64, 8: 64, 16: 64, 32: 32}, (1024, 64)),
        ({4: 64, 8: 32, 16: 16, 32: 8}, (256, 64)),
        ({4: 48, 8: 48}, (384, 48)),
    ],
)
def test_channel_layout(channels, expected):
    assert channel_layout(channels, "x") == expected


def test_channel_layout_that_fits_no_formula_names_the_resolution():
    # rosinality's channel_multiplier=4: 512 up to 32x32, then 1024 at 64x64 (channels grow with resolution).
    with pytest.raises(ValueError, match="resolution 64"):
        channel_layout({4: 512, 8: 512, 16: 512, 32: 512, 64: 1024, 128: 512}, "g_ema (generator)")
    with pytest.raises(ValueError, match="resolution 16"):
        channel_layout({4: 64, 8: 48, 16: 40}, "x")


# ----------------------------------------------------------------------------- independent forward pass
#
# What follows re-implements rosinality's model.py forward pass from its description, directly on a
# rosinality state dict and with plain torch calls only (none of our ops): EqualLinear / EqualConv2d
# (weights scaled by lr_mul / sqrt(fan_in) at run time), FusedLeakyReLU (bias, leaky 0.2, times sqrt 2),
# ModulatedConv2d (modulate, demodulate with eps 1e-8, grouped conv; up-sampling as conv_transpose2d
# stride 2 with the weight transposed to [I, O, k, k] and *not* flipped, then Blur), NoiseInjection,
# ToRGB with the upsampled skip, ResBlock (Blur then stride-2 conv, skip 1x1, / sqrt 2), minibatch
# stddev over groups of 4, final conv and linears. upfirdn2d is the native version: zero-insert, pad,
# convolve with the flipped kernel, subsample.


class _Tracked(dict):
    """A state dict that records which tensors the forward pass read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _lrelu(x, bias):
    return F.leaky_relu(x + bias.reshape(1, -1, *[1] * (x.ndim - 2)), 0.2) * SQRT2


def _upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    k = torch.flip(kernel, [0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)[:, :, ::down, ::down]


def _equal_linear(x, sd, prefix, lr_mul=1.0, activate=False):
    w, b = sd[f"{prefix}.weight"], sd[f"{prefix}.bias"]
    out = F.linear(x, w * (lr_mul / math.sqrt(w.shape[1])))
    return _lrelu(out, b * lr_mul) if activate else out + b * lr_mul


def _modulated_conv(x, style, sd, prefix, demodulate=True, upsample=False):
    weight = sd[f"{prefix}.weight"]  # [1, O, I, k, k]
    _, out_ch, in_ch, k, _ = weight.shape
    batch = x.shape[0]
    s = _equal_linear(style, sd, f"{prefix}.modulation").reshape(batch, 1, in_ch, 1, 1)
    w = weight / math.sqrt(in_ch * k * k) * s
    if demodulate:
        w = w * torch.rsqrt(w.square().sum([2, 3, 4]) + 1e-8).reshape(batch, out_ch, 1, 1, 1)
    x = x.reshape(1, batch * in_ch, *x.shape[2:])
    if upsample:
        w = w.transpose(1, 2).reshape(batch * in_ch, out_ch, k, k)
        out = F.conv_transpose2d(x, w, stride=2, groups=batch)
        out = out.reshape(batch, out_ch, *out.shape[2:])
        kernel = sd[f"{prefix}.blur.kernel"]
        p = (kernel.shape[0] - 2) - (k - 1)
        return _upfirdn2d(out, kernel, pad=((p + 1) // 2 + 1, p // 2 + 1))
    out = F.conv2d(x, w.reshape(batch * out_ch, in_ch, k, k), padding=k // 2, groups=batch)
    return out.reshape(batch, out_ch, *out.shape[2:])


def _styled_conv(x, style, noise, sd, prefix, upsample=False):
    out = _modulated_conv(x, style, sd, f"{prefix}.conv", upsample=upsample)
    out = out + sd[f"{prefix}.noise.weight"] * noise
    return _lrelu(out, sd[f"{prefix}.activate.bias"])


def _to_rgb(x, style, skip, sd, prefix):
    out = _modulated_conv(x, style, sd, f"{prefix}.conv", demodulate=False) + sd[f"{prefix}.bias"]
    if skip is not None:
        kernel = sd[f"{prefix}.upsample.kernel"]
        p = kernel.shape[0] - 2
        out = out + _upfirdn2d(skip, kernel, up=2, pad=((p + 1) // 2 + 1, p // 2))
    return out


def rosinality_generator(sd, z, n_mlp, size):
    """rosinality's Generator([z], randomize_noise=False) (noises from its buffers), lr_mlp 0.01."""
    x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        x = _equal_linear(x, sd, f"style.{i}", lr_mul=0.01, activate=True)
    log_size = int(math.log2(size))
    latent = x.unsqueeze(1).repeat(1, 2 * log_size - 2, 1)
    noise = [sd[f"noises.noise_{i}"] for i in range(2 * (log_size - 2) + 1)]
    out = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    out = _styled_conv(out, latent[:, 0], noise[0], sd, "conv1")
    skip = _to_rgb(out, latent[:, 1], None, sd, "to_rgb1")
    i = 1
    for k in range(log_size - 2):
        out = _styled_conv(out, latent[:, i], noise[2 * k + 1], sd, f"convs.{2 * k}", upsample=True)
        out = _styled_conv(out, latent[:, i + 1], noise[2 * k + 2], sd, f"convs.{2 * k + 1}")
        skip = _to_rgb(out, latent[:, i + 2], skip, sd, f"to_rgbs.{k}")
        i += 2
    return skip


def _conv_layer(x, sd, prefix, downsample=False, activate=True):
    """ConvLayer = Sequential([Blur,] EqualConv2d, FusedLeakyReLU)."""
    idx = 1 if downsample else 0
    w = sd[f"{prefix}.{idx}.weight"]
    k = w.shape[-1]
    w = w / math.sqrt(w.shape[1] * k * k)
    if downsample:
        kernel = sd[f"{prefix}.0.kernel"]
        p = (kernel.shape[0] - 2) + (k - 1)
        x = F.conv2d(_upfirdn2d(x, kernel, pad=((p + 1) // 2, p // 2)), w, stride=2)
    else:
        x = F.conv2d(x, w, padding=k // 2)
    return _lrelu(x, sd[f"{prefix}.{idx + 1}.bias"]) if activate else x


def rosinality_discriminator(sd, img, size):
    out = _conv_layer(img, sd, "convs.0")
    for j in range(1, int(math.log2(size)) - 1):
        y = _conv_layer(_conv_layer(out, sd, f"convs.{j}.conv1"), sd, f"convs.{j}.conv2", downsample=True)
        out = (y + _conv_layer(out, sd, f"convs.{j}.skip", downsample=True, activate=False)) / SQRT2
    batch, channels, h, w = out.shape
    group = min(batch, 4)
    std = out.reshape(group, -1, 1, channels, h, w)
    std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    out = torch.cat([out, std.repeat(group, 1, h, w)], dim=1)
    out = _conv_layer(out, sd, "final_conv")
    out = _equal_linear(out.reshape(batch, -1), sd, "final_linear.0", activate=True)
    return _equal_linear(out, sd, "final_linear.1")


@pytest.mark.parametrize("config", [{}, SG3_STYLE], ids=["inferable", "channel_max512"])
@pytest.mark.parametrize("fused_modconv", [True, False])
def test_independent_rosinality_forward_matches_ours(config, fused_modconv):
    g_cfg, d_cfg = _configs(**config)
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, d_cfg, _states(nets))
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(7))
    img = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(8))  # two mbstd groups of 4
    with torch.no_grad():
        for name, key in (("G_ema", "g_ema"), ("G", "g")):
            sd = _Tracked(ckpt[key])
            theirs = rosinality_generator(sd, z, n_mlp=2, size=32)
            ours = nets[name](z, noise_mode="const", fused_modconv=fused_modconv)
            assert ours.abs().mean() > 0.1  # a real signal, not vanishing activations
            torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)
            assert sd.read == set(sd), f"tensors rosinality would not use: {sorted(set(sd) - sd.read)}"
        sd = _Tracked(ckpt["d"])
        theirs = rosinality_discriminator(sd, img, size=32)
        ours = nets["D"](img)
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)
        assert sd.read == set(sd), f"tensors rosinality would not use: {sorted(set(sd) - sd.read)}"


def test_rosinality_names_and_layouts():
    g_cfg, d_cfg = _configs()
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, d_cfg, _states(nets))
    g, d, syn = ckpt["g_ema"], ckpt["d"], nets["G_ema"].synthesis
    assert g["input.input"].shape == (1, 64, 4, 4)
    assert g["conv1.noise.weight"].shape == (1,) and g["noises.noise_0"].shape == (1, 1, 4, 4)
    assert torch.equal(g["convs.2.conv.weight"][0], syn.b16.conv0.weight)  # 16x16 up-conv: not flipped
    assert torch.equal(g["noises.noise_4"][0, 0], syn.b16.conv1.noise_const)
    assert torch.equal(g["to_rgbs.1.bias"].flatten(), syn.b16.torgb.bias)
    kernel = torch.tensor([1.0, 3, 3, 1])
    kernel = torch.outer(kernel, kernel) / 64
    assert torch.equal(g["convs.0.conv.blur.kernel"], kernel * 4) and torch.equal(g["to_rgbs.0.upsample.kernel"], kernel * 4)
    assert torch.equal(d["convs.1.conv2.0.kernel"], kernel) and torch.equal(d["convs.3.skip.0.kernel"], kernel)
    assert torch.equal(d["convs.3.conv2.2.bias"], nets["D"].b8.conv1.bias)  # convs.{j}: the block at 32 / 2**(j-1)
    assert len([k for k in g if k.startswith("style.") and k.endswith("weight")]) == 2


# ----------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def ckpt():
    g_cfg, d_cfg = _configs()
    out = to_rosinality(g_cfg, d_cfg, _states(_networks(g_cfg, d_cfg)))
    del out["stylegan_config"]
    return out


def _copy(ckpt):
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in ckpt.items()}


def test_missing_unexpected_and_misshapen_tensors_are_named(ckpt):
    bad = _copy(ckpt)
    del bad["g_ema"]["noises.noise_3"]
    bad["g_ema"]["foo.weight"] = torch.zeros(3)
    bad["g_ema"]["conv1.noise.weight"] = torch.zeros(2)
    with pytest.raises(ValueError) as err:
        from_rosinality(bad)
    msg = str(err.value)
    assert msg.startswith("g_ema:") and "noises.noise_3" in msg and "foo.weight" in msg and "conv1.noise.weight [2]" in msg

    bad = _copy(ckpt)
    del bad["d"]["final_linear.1.bias"]
    with pytest.raises(ValueError, match=r"d: .*missing final_linear\.1\.bias"):
        from_rosinality(bad)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c: c.__setitem__("g_ema", [1, 2]), "'g_ema' is a list"),
        (lambda c: [c.pop("g_ema"), c.pop("g")], "no generator"),
        (lambda c: c.__setitem__("model", {}), "unknown top-level key.*model"),
        (lambda c: c.__setitem__("latent_avg", torch.zeros(5)), "latent_avg: expected 32 values"),
        (lambda c: c["g_ema"].pop("input.input"), "missing tensor 'input.input'"),
        (lambda c: c["g_ema"].__setitem__("convs.2.conv.weight", torch.zeros(1, 32, 64, 3, 3)), "no channel_base fits at resolution 32"),
        (lambda c: c["g"].__setitem__("convs.2.conv.blur.kernel", torch.eye(4)), "g: blur kernel convs.2.conv.blur.kernel"),
        (lambda c: c["g_ema"].__setitem__("convs.0.conv.blur.kernel", torch.eye(4)), "not a separable blur kernel"),
        (lambda c: c["d"].__setitem__("final_conv.0.weight", torch.zeros(64, 66, 3, 3)), "minibatch stddev"),
        (lambda c: c.__setitem__("stylegan_config", {"format": 1, "G": {"z_dim": 32, "bogus": 1}}), "unknown field.*bogus"),
        (lambda c: c.__setitem__("stylegan_config", {"G": {}}), "stylegan_config: expected"),
        (lambda c: c.__setitem__("stylegan_config", {"format": 1, "G": {"z_dim": 32, "w_dim": 32, "img_resolution": 32},
                                                     "D": {"img_resolution": 32, "architecture": "skip"}}),
         "stylegan_config: discriminator cannot be written.*'skip'"),
    ],
)
def test_malformed_checkpoints_raise_helpful_errors(ckpt, mutate, match):
    bad = _copy(ckpt)
    mutate(bad)
    with pytest.raises(ValueError, match=match):
        from_rosinality(bad)
    with pytest.raises(ValueError, match="not a dict|expected a dict"):
        from_rosinality([ckpt])


@pytest.mark.parametrize(
    "g_kw, d_kw, match",
    [
        ({"synthesis": SynthesisConfig(architecture="resnet")}, {}, "architecture 'resnet'"),
        ({"c_dim": 4}, {}, "c_dim=4"),
        ({"synthesis": SynthesisConfig(use_noise=False)}, {}, "use_noise=False"),
        ({"w_dim": 16}, {}, "style_dim"),
        ({"mapping": MappingConfig(lr_multiplier=0.1)}, {}, "lr_mlp"),
        ({}, {"mbstd_group_size": 8}, "minibatch stddev group 8"),
        ({}, {"architecture": "skip"}, "architecture 'skip'"),
        ({}, {"c_dim": 3}, "c_dim=3"),
    ],
)
def test_configs_rosinality_cannot_express_are_refused(g_kw, d_kw, match):
    g_cfg = GeneratorConfig(**{"z_dim": 32, "w_dim": 32, "img_resolution": 32, **g_kw})
    d_cfg = DiscriminatorConfig(**{"img_resolution": 32, **d_kw})
    states = {"G_ema": {}} if not d_kw else {"D": {}}
    with pytest.raises(ValueError, match=match):
        to_rosinality(g_cfg, d_cfg, states)


def test_to_rosinality_checks_state_dicts():
    g_cfg, d_cfg = _configs()
    state = Generator(g_cfg).state_dict()
    del state["synthesis.b8.conv0.weight"]
    with pytest.raises(ValueError, match=r"G_ema: .*missing synthesis\.b8\.conv0\.weight"):
        to_rosinality(g_cfg, d_cfg, {"G_ema": state})
    with pytest.raises(ValueError, match="needs its DiscriminatorConfig"):
        to_rosinality(g_cfg, None, {"D": {}})
    with pytest.raises(ValueError, match="unknown network name"):
        to_rosinality(g_cfg, None, {"E": {}})


def test_load_network_reads_a_rosinality_file(tmp_path):
    from stylegan.io.load import load_network

    g_cfg, d_cfg = _configs()
    nets = _networks(g_cfg, d_cfg)
    ckpt = to_rosinality(g_cfg, d_cfg, _states(nets))
    del ckpt["stylegan_config"]
    torch.save(ckpt, tmp_path / "550000.pt")
    net = load_network(tmp_path / "550000.pt")
    assert net.source_format == "rosinality"
    _assert_same_outputs(net.networks(), nets)

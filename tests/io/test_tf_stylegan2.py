"""NVlabs/stylegan2 TensorFlow networks: our networks written in TF layout (by inverting each row of the
name table) and read back must give the same configs, state dicts and outputs; unknown kwargs and
variables are refused by name."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from stylegan.io import tf_stylegan2
from stylegan.io.tf_stylegan2 import D_TABLE, G_TABLE, from_tf_networks
from stylegan.models.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    MappingConfig,
    SynthesisConfig,
)

# Inverse of each transform of the table (ours -> TF), written independently of the module.
INVERSE = {
    "same": lambda x: x,
    "dense": lambda x: x.T,  # [out, in] -> [in, out]
    "conv": lambda x: x.transpose(2, 3, 1, 0),  # OIHW -> HWIO
    "conv_flip": lambda x: x.transpose(2, 3, 1, 0)[::-1, ::-1],  # HWIO, spatially flipped
    "mod_bias": lambda x: x - 1,
    "const": lambda x: x[None],
    "noise": lambda x: x[None, None],
}


class TFNet:
    """Duck-typed stand-in for the safe unpickler's TF network object."""

    def __init__(self, name, static_kwargs, variables, components=None):
        self.name = name
        self.static_kwargs = dict(static_kwargs)
        self.variables = list(variables)
        self.components = dict(components or {})


def _perturb(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("resample_filter"):
                continue
            if name.endswith("affine.bias"):  # within [0.5, 2], so (x - 1) + 1 is exact in float32
                t.copy_(1 + 0.4 * (torch.rand(t.shape, generator=gen) * 2 - 1))
            elif name.endswith(("bias", "noise_strength", "w_avg")):
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
            else:
                t.copy_(torch.randn(t.shape, generator=gen))
    return net.eval()


def _tf_variables(state: dict[str, torch.Tensor], table) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        found = tf_stylegan2.tf_name(table, key)
        assert found is not None, key
        name, transform = found
        if name is not None:
            assert name not in out, name
            out[name] = np.array(INVERSE[transform.name](value.numpy()), order="C")
    return out


def _tf_generator(name, static_kwargs, variables: dict[str, np.ndarray]) -> TFNet:
    comps = {"mapping": [], "synthesis": []}
    top = [("lod", np.float32(0))]
    for var, value in variables.items():
        head, _, rest = var.partition("/")
        if head in comps:
            comps[head].append((rest, value))
        else:
            top.append((var, value))
    return TFNet(name, static_kwargs, top, {
        "mapping": TFNet("G_mapping", {}, comps["mapping"]),
        "synthesis": TFNet("G_synthesis", {}, comps["synthesis"]),
    })


G_KWARGS = dict(latent_size=32, dlatent_size=32, label_size=0, resolution=32, num_channels=3, mapping_layers=2,
                fmap_base=512, fmap_max=64, truncation_psi=0.5, style_mixing_prob=0.9)
D_KWARGS = dict(label_size=0, resolution=32, num_channels=3, fmap_base=512, fmap_max=64, mbstd_group_size=4)


def _expected(g_arch="skip", d_arch="resnet", c_dim=0, cmap_dim=None, d_mapping_layers=0):
    """What legacy.py's defaults give (read as stylegan2-ada-pytorch arguments)."""
    g = GeneratorConfig(
        z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=32,
        mapping=MappingConfig(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.995),
        synthesis=SynthesisConfig(channel_base=1024, channel_max=64, num_fp16_res=0, conv_clamp=None, architecture=g_arch, fp16_cuda_only=False),
    )
    d = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=32, architecture=d_arch, channel_base=1024, channel_max=64, num_fp16_res=0, conv_clamp=None,
        cmap_dim=cmap_dim, fp16_cuda_only=False, mbstd_group_size=4,
        mapping=MappingConfig(num_layers=d_mapping_layers, embed_features=cmap_dim, layer_features=cmap_dim, lr_multiplier=0.1, w_avg_beta=0.995),
    )
    return g, d


def _ours(g_cfg, d_cfg):
    nets = {"G": _perturb(Generator(g_cfg), 1), "G_ema": _perturb(Generator(g_cfg), 2), "D": _perturb(Discriminator(d_cfg), 3)}
    return nets


def _tf_triple(nets, g_kwargs, d_kwargs, rename=None):
    g_vars = {n: _tf_variables(nets[n].state_dict(), G_TABLE) for n in ("G", "G_ema")}
    d_vars = _tf_variables(nets["D"].state_dict(), D_TABLE)
    if rename:
        g_vars, d_vars = rename(g_vars, d_vars)
    G = _tf_generator("G", g_kwargs, g_vars["G"])
    Gs = _tf_generator("Gs", g_kwargs, g_vars["G_ema"])
    D = TFNet("D", d_kwargs, list(d_vars.items()))
    return G, D, Gs


def _check_round_trip(nets, g_cfg, d_cfg, G, D, Gs):
    g2, d2, states = from_tf_networks(G, D, Gs)
    assert g2 == g_cfg and d2 == d_cfg
    assert set(states) == {"G", "D", "G_ema"}
    for name, net in nets.items():
        ours = net.state_dict()
        assert states[name].keys() == ours.keys(), name
        for key in ours:
            assert states[name][key].dtype == ours[key].dtype and torch.equal(states[name][key], ours[key]), f"{name}.{key}"
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(5))
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    c = torch.eye(g_cfg.c_dim)[[0, 1, 2]] if g_cfg.c_dim else None
    cd = torch.eye(d_cfg.c_dim)[[0, 1, 2, 3]] if d_cfg.c_dim else None
    with torch.no_grad():
        for name in ("G", "G_ema"):
            rebuilt = Generator(g2)
            rebuilt.load_state_dict(states[name])
            assert torch.equal(rebuilt.eval()(z, c, noise_mode="const"), nets[name](z, c, noise_mode="const"))
        rebuilt = Discriminator(d2)
        rebuilt.load_state_dict(states["D"])
        assert torch.equal(rebuilt.eval()(img, cd), nets["D"](img, cd))


@pytest.mark.parametrize("g_arch, d_arch", [("skip", "resnet"), ("resnet", "skip")])
def test_round_trip(g_arch, d_arch):
    g_cfg, d_cfg = _expected(g_arch, d_arch)
    nets = _ours(g_cfg, d_cfg)
    g_kwargs = {**G_KWARGS, **({"architecture": g_arch} if g_arch != "skip" else {})}
    d_kwargs = {**D_KWARGS, **({"architecture": d_arch} if d_arch != "resnet" else {})}
    G, D, Gs = _tf_triple(nets, g_kwargs, d_kwargs)
    _check_round_trip(nets, g_cfg, d_cfg, G, D, Gs)


def test_tf_names_follow_the_official_layout():
    g_cfg, d_cfg = _expected("resnet", "resnet")
    nets = _ours(g_cfg, d_cfg)
    g = _tf_variables(nets["G"].state_dict(), G_TABLE)
    d = _tf_variables(nets["D"].state_dict(), D_TABLE)
    for name in ("dlatent_avg", "mapping/Dense1/weight", "synthesis/4x4/Const/const", "synthesis/4x4/Conv/mod_bias",
                 "synthesis/noise0", "synthesis/noise1", "synthesis/noise2", "synthesis/noise6", "synthesis/8x8/Conv0_up/weight",
                 "synthesis/32x32/Conv1/noise_strength", "synthesis/32x32/ToRGB/mod_weight", "synthesis/16x16/Skip/weight"):
        assert name in g, name
    assert "synthesis/noise7" not in g and len([n for n in g if re.fullmatch(r"synthesis/noise\d+", n)]) == 7
    assert g["synthesis/noise1"].shape == (1, 1, 8, 8) and g["synthesis/noise6"].shape == (1, 1, 32, 32)
    assert g["synthesis/8x8/Conv0_up/weight"].shape == (3, 3, 64, 64) and g["mapping/Dense0/weight"].shape == (32, 32)
    for name in ("32x32/FromRGB/weight", "32x32/Conv0/bias", "32x32/Conv1_down/weight", "8x8/Skip/weight",
                 "4x4/Conv/weight", "4x4/Dense0/weight", "Output/bias"):
        assert name in d, name
    # Conv0_up and G's Skip are stored flipped, other convs are not (legacy.py).
    w = nets["G"].synthesis.b16.conv0.weight.detach().numpy()
    assert np.array_equal(g["synthesis/16x16/Conv0_up/weight"][::-1, ::-1].transpose(3, 2, 0, 1), w)
    w = nets["G"].synthesis.b16.conv1.weight.detach().numpy()
    assert np.array_equal(g["synthesis/16x16/Conv1/weight"].transpose(3, 2, 0, 1), w)


def test_conditional_networks():
    g_cfg, d_cfg = _expected(c_dim=4, cmap_dim=16, d_mapping_layers=1)
    nets = _ours(g_cfg, d_cfg)
    G, D, Gs = _tf_triple(nets, {**G_KWARGS, "label_size": 4}, {**D_KWARGS, "label_size": 4, "mapping_layers": 1, "mapping_fmaps": 16})
    names = dict(G.components["mapping"].variables)
    assert "LabelEmbed/weight" in names and dict(D.variables)["Mapping0/weight"].shape == (16, 16)
    _check_round_trip(nets, g_cfg, d_cfg, G, D, Gs)


def test_orig_architecture_from_per_lod_names():
    """Progressive-growing networks name ToRGB / FromRGB per level of detail; that implies 'orig'."""
    g_cfg, d_cfg = _expected("orig", "orig")
    nets = _ours(g_cfg, d_cfg)
    rng = np.random.default_rng(0)

    def rename(g_vars, d_vars):
        for variables in g_vars.values():
            for name in [n for n in variables if n.startswith("synthesis/32x32/ToRGB/")]:
                variables[name.replace("32x32/ToRGB", "ToRGB_lod0")] = variables.pop(name)
            variables["synthesis/ToRGB_lod1/weight"] = rng.standard_normal((1, 1, 64, 3)).astype(np.float32)  # unused level
            variables["synthesis/lod"] = np.float32(0)
        for name in [n for n in d_vars if n.startswith("32x32/FromRGB/")]:
            d_vars[name.replace("32x32/FromRGB", "FromRGB_lod0")] = d_vars.pop(name)
        d_vars["FromRGB_lod1/weight"] = rng.standard_normal((1, 1, 3, 64)).astype(np.float32)
        d_vars["lod"] = np.float32(0)
        return g_vars, d_vars

    G, D, Gs = _tf_triple(nets, {**G_KWARGS, "structure": "linear"}, {**D_KWARGS, "structure": "linear"}, rename)
    assert "ToRGB_lod0/weight" in dict(Gs.components["synthesis"].variables)
    _check_round_trip(nets, g_cfg, d_cfg, G, D, Gs)


def test_defaults_follow_legacy():
    g_cfg, d_cfg = _expected()
    nets = _ours(g_cfg, d_cfg)
    d_kwargs = {k: v for k, v in D_KWARGS.items() if k != "mbstd_group_size"}
    G, D, Gs = _tf_triple(nets, {**G_KWARGS, "w_avg_beta": None, "resample_kernel": None}, d_kwargs)
    g2, d2, _ = from_tf_networks(G, D, Gs)
    assert g2.mapping.w_avg_beta == 1  # None = a frozen average, as in legacy.py
    assert g2.synthesis.resample_filter == [1]  # TF: resample_kernel=None = no filtering
    assert d2.mbstd_group_size is None  # legacy.py: absent = whole minibatch
    assert g2.synthesis.channel_base == 2 * G_KWARGS["fmap_base"] and d2.mapping.lr_multiplier == 0.1


@pytest.fixture(scope="module")
def triple():
    g_cfg, d_cfg = _expected()
    return _tf_triple(_ours(g_cfg, d_cfg), G_KWARGS, D_KWARGS)


def test_unknown_static_kwargs_are_named(triple):
    G, D, Gs = triple
    bad_g = TFNet("G", {**G.static_kwargs, "fmap_decay": 1.0}, G.variables, G.components)
    with pytest.raises(ValueError, match=r"^G: unknown TensorFlow static kwarg\(s\) fmap_decay$"):
        from_tf_networks(bad_g, D, Gs)
    bad_d = TFNet("D", {**D.static_kwargs, "fmap_min": 1, "blur": 2}, D.variables)
    with pytest.raises(ValueError, match=r"^D: unknown TensorFlow static kwarg\(s\) blur, fmap_min$"):
        from_tf_networks(G, bad_d, Gs)
    with pytest.raises(ValueError, match="fmap_base=None is not an integer"):
        from_tf_networks(G, TFNet("D", {**D.static_kwargs, "fmap_base": None}, D.variables), Gs)


def test_unknown_missing_and_misshapen_variables_are_named(triple):
    G, D, Gs = triple
    synth = G.components["synthesis"]
    variables = [(n, v) for n, v in synth.variables if n != "noise3"] + [("64x64/Conv1/weight", np.zeros((3, 3, 8, 8), np.float32))]
    variables = [(n, np.zeros((1,), np.float32)) if n == "8x8/Conv1/noise_strength" else (n, v) for n, v in variables]
    bad = TFNet("G", G.static_kwargs, G.variables, {**G.components, "synthesis": TFNet("G_synthesis", {}, variables)})
    with pytest.raises(ValueError) as err:
        from_tf_networks(bad, D, Gs)
    msg = str(err.value)
    assert msg.startswith("G: ")
    assert "missing synthesis/noise3 (for synthesis.b16.conv0.noise_const)" in msg
    assert "unknown synthesis/64x64/Conv1/weight" in msg
    assert "wrong shape synthesis/8x8/Conv1/noise_strength [1]" in msg

    bad_d = TFNet("D", D.static_kwargs, [(n, v) for n, v in D.variables if n != "Output/bias"] + [("LabelConcat/weight", np.zeros(2))])
    with pytest.raises(ValueError, match=r"^D: .*missing Output/bias.*unknown LabelConcat/weight"):
        from_tf_networks(G, bad_d, Gs)


def test_malformed_networks(triple):
    G, D, Gs = triple
    with pytest.raises(ValueError, match="Gs: .*no 'static_kwargs'"):
        from_tf_networks(G, D, object())
    with pytest.raises(ValueError, match="D: static_kwargs is a list"):
        from_tf_networks(G, _with(D, static_kwargs=[]), Gs)
    other = TFNet("Gs", {**Gs.static_kwargs, "mapping_lrmul": 0.02}, Gs.variables, Gs.components)
    with pytest.raises(ValueError, match="G and Gs describe different generators"):
        from_tf_networks(G, D, other)


def _with(net, **attrs):
    out = TFNet(net.name, {}, net.variables, net.components)
    out.__dict__.update(attrs)
    return out


def test_tf_pickle_file_through_load_network(tmp_path):
    """A pickle in NVlabs/stylegan2's layout loads through the allow-list unpickler; its code never runs."""
    from helpers import TFNetworkRecord, official_pickle_bytes

    from stylegan import load_network

    g_cfg, d_cfg = _expected()
    nets = _ours(g_cfg, d_cfg)
    G, D, Gs = _tf_triple(nets, G_KWARGS, D_KWARGS)
    marker = tmp_path / "EXECUTED"
    src = f"import os\nos.system('touch {marker}')\n"

    def record(net):
        comps = {k: record(v) for k, v in net.components.items()}
        return TFNetworkRecord(net.name, net.static_kwargs, net.variables, comps, build_module_src=src)

    path = tmp_path / "stylegan2-tiny.pkl"
    path.write_bytes(official_pickle_bytes((record(G), record(D), record(Gs))))
    assert b"dnnlib.tflib.network" in path.read_bytes()
    net = load_network(path)
    assert net.source_format == "tf-pickle" and not marker.exists()
    z = torch.randn(2, 32)
    with torch.no_grad():
        for name in ("G", "G_ema"):
            assert torch.equal(getattr(net, name)(z, None, noise_mode="const"), nets[name](z, None, noise_mode="const"))
        img = torch.randn(4, 3, 32, 32)
        assert torch.equal(net.D(img, None), nets["D"](img, None))

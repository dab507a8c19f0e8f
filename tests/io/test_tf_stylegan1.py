"""NVlabs/stylegan (2019) TensorFlow networks: our StyleGAN networks written in TF layout and read back give
the same configs, state dicts and outputs; names follow networks_stylegan.py; bad input is named in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.io import tf_stylegan1
from stylegan.io.load import NetworkLoadError
from stylegan.io.tf_stylegan1 import D_TABLE, G_TABLE, from_tf_networks
from stylegan.models.stylegan1 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig

# ours -> TF, written independently of the module
INVERSE = {
    "same": lambda x: x,
    "dense": lambda x: x.T,
    "conv": lambda x: x.transpose(2, 3, 1, 0),
    "const": lambda x: x[None],
    "noise": lambda x: x[None, None],
}

G_KWARGS = dict(latent_size=16, dlatent_size=16, resolution=32, num_channels=3, fmap_base=256, fmap_max=32, mapping_layers=2,
                mapping_fmaps=16, truncation_psi=0.7, truncation_cutoff=8, structure="linear")
D_KWARGS = dict(resolution=32, num_channels=3, fmap_base=256, fmap_max=32, structure="linear")


class TFNet:
    """Duck-typed stand-in for the safe unpickler's TF network object."""

    def __init__(self, name, static_kwargs, variables, components=None, build_func_name=""):
        self.name = name
        self.static_kwargs = dict(static_kwargs)
        self.variables = list(variables)
        self.components = dict(components or {})
        self.build_func_name = build_func_name


def _configs(c_dim: int = 0) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    g = GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=32, mapping=MappingConfig(num_layers=2, layer_features=16),
                        synthesis=SynthesisConfig(channel_base=256, channel_max=32))
    d = DiscriminatorConfig(c_dim=c_dim, img_resolution=32, channel_base=256, channel_max=32)
    return g, d


def _perturb(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("blur_filter"):
                continue
            if name.endswith("lod"):
                t.fill_(0.5)
            elif name.endswith(("bias", "noise_strength", "w_avg")):
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
            else:
                t.copy_(torch.randn(t.shape, generator=gen))
    return net.eval()


def _tf_variables(state, table, res):
    out = {}
    for key, value in state.items():
        found = tf_stylegan1.tf_name(table, key, res)
        assert found is not None, key
        name, transform = found
        if name is not None:
            assert name not in out, name
            out[name] = np.array(INVERSE[transform.name](value.numpy()), order="C")
    return out


def _tf_generator(name, kwargs, variables):
    comps = {"mapping": [], "synthesis": [("lod", np.float32(0))]}  # G_synthesis's own (redundant) lod
    top = []
    for var, value in variables.items():
        head, _, rest = var.partition("/")
        (comps[head] if head in comps else top).append((rest if head in comps else var, value))
    return TFNet(name, kwargs, top, {"mapping": TFNet("G_mapping", {}, comps["mapping"]),
                                     "synthesis": TFNet("G_synthesis", {}, comps["synthesis"])}, build_func_name="G_style")


def _triple(c_dim=0, g_kwargs=G_KWARGS, d_kwargs=D_KWARGS, edit=None):
    g_cfg, d_cfg = _configs(c_dim)
    nets = {"G": _perturb(Generator(g_cfg), 1), "G_ema": _perturb(Generator(g_cfg), 2), "D": _perturb(Discriminator(d_cfg), 3)}
    g_vars = {n: _tf_variables(nets[n].state_dict(), G_TABLE, 32) for n in ("G", "G_ema")}
    d_vars = _tf_variables(nets["D"].state_dict(), D_TABLE, 32)
    if edit:
        edit(g_vars["G_ema"], d_vars)
    G = _tf_generator("G", g_kwargs, g_vars["G"])
    Gs = _tf_generator("Gs", g_kwargs, g_vars["G_ema"])
    D = TFNet("D", d_kwargs, list(d_vars.items()), build_func_name="D_basic")
    return nets, (g_cfg, d_cfg), (G, D, Gs)


def test_tf_names_follow_networks_stylegan():
    _, _, (G, D, Gs) = _triple(c_dim=3, g_kwargs={**G_KWARGS, "label_size": 3}, d_kwargs={**D_KWARGS, "label_size": 3})
    g = {**{f"mapping/{n}": v for n, v in Gs.components["mapping"].variables},
         **{f"synthesis/{n}": v for n, v in Gs.components["synthesis"].variables}, **dict(Gs.variables)}
    expected_g = {
        "lod": (), "dlatent_avg": (16,), "mapping/LabelConcat/weight": (3, 16), "mapping/Dense0/weight": (32, 16),
        "mapping/Dense1/bias": (16,), "synthesis/4x4/Const/const": (1, 32, 4, 4), "synthesis/4x4/Const/Noise/weight": (32,),
        "synthesis/4x4/Const/bias": (32,), "synthesis/4x4/Const/StyleMod/weight": (16, 64), "synthesis/4x4/Conv/weight": (3, 3, 32, 32),
        "synthesis/4x4/Conv/StyleMod/bias": (64,), "synthesis/8x8/Conv0_up/weight": (3, 3, 32, 32),
        "synthesis/32x32/Conv0_up/Noise/weight": (16,), "synthesis/32x32/Conv1/weight": (3, 3, 16, 16),
        "synthesis/noise0": (1, 1, 4, 4), "synthesis/noise1": (1, 1, 4, 4), "synthesis/noise2": (1, 1, 8, 8),
        "synthesis/noise7": (1, 1, 32, 32), "synthesis/ToRGB_lod0/weight": (1, 1, 16, 3), "synthesis/ToRGB_lod3/bias": (3,),
    }
    for name, shape in expected_g.items():
        assert name in g and g[name].shape == shape, name
    assert "synthesis/noise8" not in g and "synthesis/ToRGB_lod4/weight" not in g
    d = dict(D.variables)
    expected_d = {"lod": (), "FromRGB_lod0/weight": (1, 1, 3, 16), "FromRGB_lod3/bias": (32,), "32x32/Conv0/weight": (3, 3, 16, 16),
                  "32x32/Conv1_down/weight": (3, 3, 16, 32), "4x4/Conv/weight": (3, 3, 33, 32), "4x4/Dense0/weight": (512, 32),
                  "4x4/Dense1/weight": (32, 3)}
    for name, shape in expected_d.items():
        assert name in d and d[name].shape == shape, name


@pytest.mark.parametrize("c_dim", [0, 3])
def test_round_trip(c_dim):
    extra = {"label_size": c_dim} if c_dim else {}
    nets, (g_cfg, d_cfg), triple = _triple(c_dim, {**G_KWARGS, **extra}, {**D_KWARGS, **extra})
    g2, d2, states = from_tf_networks(*triple)
    assert g2 == g_cfg and d2 == d_cfg
    for name, net in nets.items():
        ours = net.state_dict()
        assert states[name].keys() == ours.keys()
        for key in ours:
            assert states[name][key].dtype == ours[key].dtype and torch.equal(states[name][key], ours[key]), f"{name}.{key}"
    z = torch.randn(4, 16)
    c = torch.eye(c_dim)[[0, 1, 2, 0]] if c_dim else None
    with torch.no_grad():
        G = Generator(g2).eval()
        G.load_state_dict(states["G_ema"])
        assert float(G.synthesis.lod) == 0.5
        assert torch.equal(G(z, c, noise_mode="const"), nets["G_ema"](z, c, noise_mode="const"))
        D = Discriminator(d2).eval()
        D.load_state_dict(states["D"])
        img = torch.randn(4, 3, 32, 32)
        assert torch.equal(D(img, c), nets["D"](img, c))


def test_sizes_inferred_from_shapes_when_kwargs_are_absent():
    keep_g = ("mapping_fmaps", "fmap_base", "fmap_max")
    keep_d = ("fmap_base", "fmap_max")
    _, (g_cfg, d_cfg), triple = _triple(2, {k: v for k, v in G_KWARGS.items() if k in keep_g},
                                        {k: v for k, v in D_KWARGS.items() if k in keep_d})
    g2, d2, _ = from_tf_networks(*triple)
    assert (g2.z_dim, g2.c_dim, g2.w_dim, g2.img_resolution, g2.img_channels, g2.mapping.num_layers) == (16, 2, 16, 32, 3, 2)
    assert (d2.c_dim, d2.img_resolution, d2.img_channels) == (2, 32, 3)


def test_unknown_missing_and_misshapen_variables_are_named():
    def edit(g, d):
        del g["synthesis/noise3"]
        g["synthesis/64x64/Conv1/weight"] = np.zeros((3, 3, 8, 8), np.float32)
        g["synthesis/8x8/Conv1/Noise/weight"] = np.zeros((5,), np.float32)
        d["4x4/Dense2/weight"] = np.zeros((2, 2), np.float32)

    _, _, (G, D, Gs) = _triple(edit=edit)
    with pytest.raises(NetworkLoadError) as err:
        from_tf_networks(Gs, D, Gs)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("G: TensorFlow variables do not fit the architecture: ")
    assert "missing synthesis/noise3 (for synthesis.b8.conv1.noise_const)" in msg
    assert "unknown synthesis/64x64/Conv1/weight" in msg
    assert "wrong shape synthesis/8x8/Conv1/Noise/weight [5]" in msg
    _, _, (G, D, Gs) = _triple(edit=edit)
    with pytest.raises(NetworkLoadError, match=r"^D: .*unknown 4x4/Dense2/weight$"):
        from_tf_networks(G, D, G)


def test_unsupported_and_unknown_static_kwargs():
    _, _, (G, D, Gs) = _triple(g_kwargs={**G_KWARGS, "use_pixel_norm": True})
    with pytest.raises(NetworkLoadError, match=r"^G: static kwarg use_pixel_norm=True is not supported \(only False\)$"):
        from_tf_networks(G, D, Gs)
    _, _, (G, D, Gs) = _triple(d_kwargs={**D_KWARGS, "fmap_min": 1})
    with pytest.raises(NetworkLoadError, match=r"^D: unknown TensorFlow static kwarg\(s\) fmap_min$"):
        from_tf_networks(G, D, Gs)
    _, _, (G, D, Gs) = _triple()
    other = TFNet("Gs", {**Gs.static_kwargs, "mapping_lrmul": 0.02}, Gs.variables, Gs.components, "G_style")
    with pytest.raises(NetworkLoadError, match="G and Gs describe different generators"):
        from_tf_networks(G, D, other)
    with pytest.raises(NetworkLoadError, match="^D: object object has no 'static_kwargs'"):
        from_tf_networks(G, object(), Gs)


def test_tf_pickle_file_through_load_network(tmp_path):
    """A pickle in NVlabs/stylegan's layout loads through the allow-list unpickler; its code never runs."""
    from helpers import TFNetworkRecord, official_pickle_bytes

    from stylegan import load_network

    nets, _, (G, D, Gs) = _triple()
    marker = tmp_path / "EXECUTED"
    src = f"import os\nos.system('touch {marker}')\n"

    def record(net, func):
        comps = {k: record(v, f"G_{k}") for k, v in net.components.items()}
        rec = TFNetworkRecord(net.name, net.static_kwargs, net.variables, comps, build_module_src=src)
        rec.state["build_func_name"] = func
        return rec

    path = tmp_path / "stylegan-tiny.pkl"
    path.write_bytes(official_pickle_bytes((record(G, "G_style"), record(D, "D_basic"), record(Gs, "G_style"))))
    net = load_network(path)
    assert net.source_format == "tf-stylegan1-pickle" and not marker.exists()
    assert isinstance(net.G_ema, Generator) and isinstance(net.D, Discriminator)
    z = torch.randn(2, 16)
    with torch.no_grad():
        for name in ("G", "G_ema"):
            assert torch.equal(getattr(net, name)(z, None, noise_mode="const"), nets[name](z, None, noise_mode="const"))
        img = torch.randn(4, 3, 32, 32)
        assert torch.equal(net.D(img, None), nets["D"](img, None))
    bad = tmp_path / "bad.pkl"
    G.static_kwargs["fmap_decay"] = 0.5
    bad.write_bytes(official_pickle_bytes((record(G, "G_style"), record(D, "D_basic"), record(Gs, "G_style"))))
    with pytest.raises(NetworkLoadError, match=r"bad\.pkl: G: static kwarg fmap_decay=0\.5 is not supported"):
        load_network(bad)

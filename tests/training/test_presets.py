"""The preset table: every row resolves into networks of its registered families; the lengths NVIDIA scales
with the minibatch; `stylegan init`'s network presets."""

from __future__ import annotations

import pytest

from stylegan.data.dataset import DatasetInfo
from stylegan.models import stylegan_xl
from stylegan.models.registry import NETWORKS, build_network
from stylegan.training.options import resolve
from stylegan.training.presets import BUILDERS, PRESETS, PerBatch, network_preset


def _info(res: int) -> DatasetInfo:
    return DatasetInfo("x", "/data/x.zip", res, 3, 1000, 0, False, False, None, 0)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_row_builds_its_networks(name):
    row = PRESETS[name]
    for net, kind in ((row.G, "generator"), (row.D, "discriminator")):
        assert (net.family, kind) in NETWORKS and (net.family, kind) in BUILDERS
    o = resolve({"data": "x", "cfg": name, "cbase": 512, "cmax": 16, "map_depth": 1}, _info(32))
    assert (o.G.family, o.D.family) == (row.G.family, row.D.family) and o.cfg == name
    G, D = build_network(o.G), build_network(o.D)
    assert type(G) is NETWORKS[(row.G.family, "generator")].network and type(D) is NETWORKS[(row.D.family, "discriminator")].network
    assert G.img_resolution == D.img_resolution == 32 and G.mapping.num_layers == 1


def test_lengths_scaled_with_the_minibatch():
    assert PerBatch(10).at(32) == 10 and PerBatch(10).at(64) == 20 and PerBatch(200).at(16) == 100
    assert resolve({"data": "x", "cfg": "stylegan3-r", "batch": 64, "gamma": 1}, _info(256)).loss.blur_fade_kimg == 400
    assert resolve({"data": "x", "cfg": "stylegan3-t", "batch": 8, "gamma": 1}, _info(256)).ema_kimg == 2.5


def test_network_presets_of_init():
    g, d = network_preset("sg2-256", img_channels=1, c_dim=3)
    assert (g.img_resolution, g.z_dim, g.w_dim, g.mapping.num_layers, g.synthesis.channel_base, g.synthesis.channel_max) == \
        (256, 512, 512, 8, 16384, 512)
    assert (g.img_channels, g.c_dim, d.img_channels, d.c_dim, d.channel_base) == (1, 3, 1, 3, 16384)
    assert network_preset("sg2-32")[0] != network_preset("sg2-32", c_dim=1)[0]  # fresh configs every call
    with pytest.raises(ValueError, match="unknown preset 'sg2-48'; choose from sg2-32, sg2-64, sg2-256, sg2-1024"):
        network_preset("sg2-48")


def test_stylegan_xl_network_presets_of_init():
    """xl / xl-tiny: a generator only, StyleGAN-XL train.py's sizes, a 10-layer 16² stem grown by x2 stages of 7 head
    layers to the resolution asked for (to 64²: the stem's 11 layers keep 8, + 8 head layers; those 16 keep 13, + 8)."""
    g, d = network_preset("xl", c_dim=1000)
    assert d is None and isinstance(g, stylegan_xl.GeneratorConfig)
    assert (g.img_resolution, g.z_dim, g.w_dim, g.mapping.num_layers, g.history.stem.channel_base, g.history.stem.channel_max) == \
        (16, 64, 512, 2, 65536, 1024)
    g, _ = network_preset("xl-tiny", img_channels=1, c_dim=1200, resolution=64, class_embed="random")
    assert (g.img_resolution, g.img_channels, g.w_dim, g.mapping.embed_classes, g.mapping.class_embed) == (64, 1, 128, 1200, "random")
    assert g.history.stages == [stylegan_xl.GrowthStage(2, 7)] * 2 and len(g.synthesis.layers) == 8 + 5 + 8
    with pytest.raises(ValueError, match="c_dim=1200: the ImageNet class embedding has 1000 rows"):
        network_preset("xl-tiny", c_dim=1200)
    with pytest.raises(ValueError, match="resolution 64: a 32x32 StyleGAN2 preset; only the StyleGAN-XL presets grow"):
        network_preset("sg2-32", resolution=64)
    with pytest.raises(ValueError, match="class_embed 'random': a StyleGAN2 preset has no class embedding"):
        network_preset("sg2-32", class_embed="random")
    assert network_preset("sg2-32", resolution=32)[0] == network_preset("sg2-32")[0]

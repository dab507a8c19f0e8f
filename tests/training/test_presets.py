"""The preset table: every row resolves into networks of its registered families; the lengths NVIDIA scales
with the minibatch; `stylegan init`'s network presets."""

from __future__ import annotations

import pytest

from stylegan.data.dataset import DatasetInfo
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

"""Native checkpoints written before the StyleGAN (2019) generator config was nested (tests/fixtures/c324a34):
they load, their configs read in the current layout, and they compute what the code that wrote them computed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan import load_network
from stylegan.cli.main import main
from stylegan.models.registry import network_spec
from stylegan.models.stylegan1 import GeneratorConfig, MappingConfig, SynthesisConfig

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "c324a34"


@pytest.mark.parametrize("style", ["adain", "demod"])
def test_flat_stylegan1_checkpoints_load_and_compute_the_same(style, capsys):
    net = load_network(OLD / f"stylegan1_{style}.safetensors")
    G, D = net.G_ema, net.D
    assert G.config == GeneratorConfig(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, mapping=MappingConfig(num_layers=2),
                                       synthesis=SynthesisConfig(style=style, channel_base=64, channel_max=8))
    assert G.config.mapping.w_avg_beta == 0.995 and float(G.synthesis.lod) == 0.5 and float(D.lod) == 0.5
    assert network_spec(G)["config"]["synthesis"]["style"] == style  # written back in the current layout
    ref = np.load(OLD / "stylegan1_reference.npz")
    z, c = torch.from_numpy(ref[f"{style}_z"]), torch.from_numpy(ref[f"{style}_c"])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode="const")
        torch.testing.assert_close(img, torch.from_numpy(ref[f"{style}_img"]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(D(img, c), torch.from_numpy(ref[f"{style}_logits"]), rtol=1e-5, atol=1e-6)
    assert main(["info", str(OLD / f"stylegan1_{style}.safetensors")]) == 0
    out = capsys.readouterr().out
    assert f"G_ema: stylegan1 generator, {style}, 16x16x3" in out and "lod=0.5, z_dim=8, w_dim=8, num_ws=6, mapping_layers=2" in out


def test_a_config_mixing_both_layouts_is_refused():
    with pytest.raises(ValueError, match="mapping_layers belong in 'mapping' / 'synthesis'"):
        GeneratorConfig.from_dict({"mapping_layers": 2, "mapping": {"num_layers": 2}})

"""Droplet statistics (StyleGAN2 §2, Fig. 1): peak-to-mean ratio on synthetic maps and hooks on real networks."""

import numpy as np
import pytest
import torch

import stylegan
from stylegan.analysis import droplets
from stylegan.analysis.common import sample_ws
from stylegan.models import stylegan2


def test_flat_map_ratio_is_one():
    x = torch.ones(2, 8, 16, 16) * torch.tensor([1.0, -3.0, 0.5, 7.0, 1.0, 1.0, 2.0, -1.0]).view(1, 8, 1, 1)
    torch.testing.assert_close(droplets.peak_to_mean(x), torch.ones(2))


def test_noise_map_ratio_is_small():
    x = torch.randn(4, 256, 16, 16, generator=torch.Generator().manual_seed(0))
    assert (droplets.peak_to_mean(x) < 1.25).all()


def test_spike_gives_its_analytic_ratio():
    # background |x| = 1 everywhere, one position with |x| = a in every channel:
    # rms = sqrt((P - 1 + a²) / P), M = 1 / rms off the spike and a / rms on it, so max/mean = a P / (P - 1 + a)
    P, a = 16 * 16, 50.0
    x = torch.ones(1, 32, 16, 16)
    x[0, :, 5, 9] = a
    expected = a * P / (P - 1 + a)
    assert droplets.peak_to_mean(x).item() == pytest.approx(expected, rel=1e-5)
    assert expected > 40


def test_hooks_on_sg2(parity_dir):
    G = stylegan.load_network(parity_dir / "sg2_32").generator
    stats, maps = droplets.droplet_stats(G, num_samples=3, seed=1)
    names = [s.name for s in stats.layers]
    assert names == [n for n, m in G.synthesis.named_modules() if isinstance(m, stylegan2.SynthesisLayer)]
    assert names[0] == "b4.conv1" and names[-1] == "b32.conv1"
    # direct recomputation of the last layer's numbers
    out = []
    h = G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: out.append(o))
    G.synthesis(sample_ws(G, 3, torch.Generator().manual_seed(1), torch.device("cpu")), noise_mode="const")
    h.remove()
    x = out[0]
    last = stats.layers[-1]
    assert (last.channels, last.resolution) == (x.shape[1], 32)
    assert last.peak_to_mean == pytest.approx(droplets.peak_to_mean(x).mean().item(), rel=1e-5)
    assert last.mean == pytest.approx(x.double().mean().item(), rel=1e-5, abs=1e-7)
    assert last.std == pytest.approx(x.double().std(unbiased=False).item(), rel=1e-5)
    assert last.max == pytest.approx(x.abs().max().item())
    assert maps["b32.conv1"].shape == (32, 32)
    np.testing.assert_allclose(maps["b32.conv1"].numpy(), droplets.magnitude_map(x[:1])[0].numpy(), rtol=1e-6)


def test_hooks_on_sg3(parity_dir):
    G = stylegan.load_network(parity_dir / "sg3t_32").generator
    stats, _ = droplets.droplet_stats(G, num_samples=1)
    assert [s.name for s in stats.layers] == G.synthesis.layer_names[:-1]  # all but ToRGB
    assert all(s.peak_to_mean >= 1 for s in stats.layers)


@pytest.mark.parametrize("style, layer_cls", [("adain", "StyleLayer"), ("demod", "SynthesisLayer")])
def test_hooks_on_stylegan_2019_and_revised(style, layer_cls):
    from stylegan.models import stylegan1

    torch.manual_seed(0)
    G = stylegan1.Generator(stylegan1.GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, img_channels=1,
                                                      mapping=stylegan1.MappingConfig(num_layers=1),
                                                      synthesis=stylegan1.SynthesisConfig(style=style, channel_base=128, channel_max=16))).eval()
    layers = droplets.feature_layers(G)
    expected = G.num_ws if style == "adain" else G.num_ws - 1  # revised: the 4x4 block has one conv, its ToRGB the last w
    assert len(layers) == expected and all(type(m).__name__ == layer_cls for _, m in layers)
    stats, maps = droplets.droplet_stats(G, num_samples=4)
    assert len(stats.layers) == expected and all(np.isfinite(s.peak_to_mean) and s.peak_to_mean >= 1 for s in stats.layers)
    assert set(maps) == {name for name, _ in layers}

"""Projection (StyleGAN2 appendix D): schedules, noise regulariser, recovery of generated images, exact resume."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan.data
from stylegan import load_network
from stylegan.editing.projection import (
    lpips_pixels, learning_rate, load_projection, noise_buffers, noise_regularization, normalize_noise_, project,
    save_projection, w_noise_scale, w_statistics)
from stylegan.models import Generator, GeneratorConfig, MappingConfig, SynthesisConfig


def _tiny(img_channels: int = 3, c_dim: int = 0) -> Generator:
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=16, img_channels=img_channels,
                                  mapping=MappingConfig(num_layers=2), synthesis=SynthesisConfig(channel_base=256, channel_max=32)))
    return G.eval().requires_grad_(False)


def _generated(G: torch.nn.Module, seed: int) -> torch.Tensor:
    """An image G made (const noise, psi=1), quantised to uint8 as a PNG would be, in [-1, 1]."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        img = G(z, None, noise_mode="const")[0]
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).float() / 127.5 - 1


def _fashion_mnist_image() -> torch.Tensor:
    """A real image unrelated to the network: the first Fashion-MNIST test image, padded to 32x32, as RGB in [-1, 1]."""
    raw = gzip.open(Path(stylegan.data.__file__).parent / "builtin/fashion_mnist/t10k-images-idx3-ubyte.gz").read()
    img = torch.tensor(np.frombuffer(raw, np.uint8, count=28 * 28, offset=16).reshape(28, 28), dtype=torch.float32)
    return torch.nn.functional.pad(img, (2, 2, 2, 2))[None].repeat(3, 1, 1) / 127.5 - 1


@pytest.mark.parametrize("t, expected", [(0.0, 0.0), (0.01, 0.1 * 0.2), (0.025, 0.05), (0.05, 0.1), (0.5, 0.1),
                                         (0.75, 0.1), (0.875, 0.05), (0.9375, 0.1 * (0.5 - 0.5 * math.cos(0.25 * math.pi))),
                                         (1.0, 0.0)])
def test_learning_rate_schedule(t, expected):
    assert learning_rate(t) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("t, factor", [(0.0, 1.0), (0.375, 0.25), (0.6, 0.04), (0.75, 0.0), (0.9, 0.0)])
def test_w_noise_schedule(t, factor):
    assert w_noise_scale(t, w_std=3.0) == pytest.approx(3.0 * 0.05 * factor, abs=1e-12)


def _naive_reg(maps: list[torch.Tensor]) -> float:
    total = 0.0
    for n in maps:
        x = n.double().numpy()
        while True:
            h, w = x.shape
            ax = sum(x[i, j] * x[i, (j - 1) % w] for i in range(h) for j in range(w)) / (h * w)
            ay = sum(x[i, j] * x[(i - 1) % h, j] for i in range(h) for j in range(w)) / (h * w)
            total += ax ** 2 + ay ** 2
            if h <= 8:
                break
            x = x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return total


def test_noise_regularization_matches_naive_loop():
    g = torch.Generator().manual_seed(1)
    maps = [torch.randn([s, s], generator=g) + 0.3 * torch.randn([1, s], generator=g) for s in (4, 8, 16, 32)]
    assert float(noise_regularization(maps)) == pytest.approx(_naive_reg(maps), rel=1e-4)
    smooth = torch.ones([16, 16])
    assert float(noise_regularization([smooth])) == pytest.approx(4.0)  # two levels, autocorrelation 1 in x and y


def test_normalize_noise():
    maps = [torch.randn([8, 8]) * 3 + 2, torch.rand([16, 16])]
    normalize_noise_(maps)
    for n in maps:
        assert abs(float(n.mean())) < 1e-6 and float(n.square().mean()) == pytest.approx(1.0, abs=1e-5)


def test_w_statistics_match_direct_computation():
    G = _tiny()
    w_avg, w_std = w_statistics(G, num_samples=300, batch=128)
    z = torch.from_numpy(np.random.RandomState(123).randn(300, G.z_dim)).float()
    w = G.mapping(z, None)[:, 0].double()
    assert w_avg.shape == (1, 1, G.w_dim)
    assert torch.allclose(w_avg[0, 0].double(), w.mean(0), atol=1e-5)
    assert w_std == pytest.approx(float((w - w.mean(0)).square().sum(1).mean().sqrt()), rel=1e-4)


def test_lpips_pixels():
    x = torch.rand(1, 1, 512, 512) * 2 - 1
    y = lpips_pixels(x)
    assert y.shape == (1, 3, 256, 256)
    ref = ((x + 1) * 127.5).reshape(1, 1, 256, 2, 256, 2).mean((3, 5))
    assert torch.allclose(y[:, 2:3], ref, atol=1e-4)
    assert lpips_pixels(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_recovers_generated_image_better_than_unrelated(parity_dir, record_property):
    G = load_network(parity_dir / "sg2_32").generator
    stats = w_statistics(G)
    own = project(G, _generated(G, 7), num_steps=150, distance="mse", w_stats=stats, seed=1)
    far = project(G, _fashion_mnist_image(), num_steps=150, distance="mse", w_stats=stats, seed=1)
    record_property("mse_generated", own.distance)
    record_property("mse_unrelated", far.distance)
    print(f"pixel MSE after 150 steps: generated {own.distance:.5f}, unrelated {far.distance:.5f}")
    assert own.distance < far.distance / 2
    assert own.distances[-1] < own.distances[0] / 10
    assert own.ws.shape == (1, G.num_ws, G.w_dim) and own.w_opt.shape == (1, 1, G.w_dim)
    assert torch.equal(own.ws, own.w_opt.repeat(1, G.num_ws, 1))
    assert set(own.noise) == set(noise_buffers(G)) and len(own.noise) == 7
    for name, n in own.noise.items():
        assert abs(float(n.mean())) < 1e-5 and float(n.square().mean()) == pytest.approx(1.0, abs=1e-4), name
        x = n[None, None]
        for dim in (2, 3):
            assert abs(float((x * torch.roll(x, 1, dim)).mean())) < 0.2, name
    assert noise_regularization(own.noise.values()) < 0.05


def test_caller_network_untouched_and_stylegan3(parity_dir):
    G = load_network(parity_dir / "sg3t_32").generator
    before = {k: v.clone() for k, v in G.state_dict().items()}
    target = _generated(G, 3)
    result = project(G, target, num_steps=12, distance="mse", seed=0)
    assert result.noise == {} and result.ws.shape == (1, G.num_ws, G.w_dim)
    assert result.distances[-1] < result.distances[0]
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


def test_one_channel_network_and_w_plus():
    G = _tiny(img_channels=1)
    target = _generated(G, 1)
    assert target.shape == (1, 16, 16)
    result = project(G, target, num_steps=15, space="w+", distance="mse", seed=0)
    assert result.w_opt.shape == (1, G.num_ws, G.w_dim) and torch.equal(result.ws, result.w_opt)
    assert result.distance < result.distances[0]
    with pytest.raises(ValueError, match="target has shape"):
        project(G, torch.zeros(3, 16, 16), num_steps=2, distance="mse")
    with pytest.raises(ValueError, match="needs vgg"):
        project(G, target, num_steps=2)


def test_conditional_network_needs_label():
    G = _tiny(c_dim=3)
    target = torch.zeros(3, 16, 16)
    with pytest.raises(ValueError, match="conditional"):
        project(G, target, num_steps=2, distance="mse")
    assert project(G, target, num_steps=2, distance="mse", c=torch.eye(3)[1:2]).step == 2


@pytest.mark.parametrize("space", ["w", "w+"])
def test_exact_resume(tmp_path, space):
    G = _tiny()
    target = _generated(G, 5)
    full = project(G, target, num_steps=20, space=space, distance="mse", seed=4)
    part = project(G, target, num_steps=20, space=space, distance="mse", seed=4, callback=lambda s: s.step == 8)
    assert part.interrupted and part.step == 8 and not part.finished
    save_projection(tmp_path / "p.npz", part)
    loaded = load_projection(tmp_path / "p.npz")
    rest = project(G, target, num_steps=999, space=space, distance="mse", seed=12345, resume=loaded)
    assert rest.step == rest.num_steps == 20 and not rest.interrupted
    assert (rest.ws - full.ws).abs().max() <= 1e-6
    assert all((rest.noise[k] - full.noise[k]).abs().max() <= 1e-5 for k in full.noise)
    assert rest.distances == pytest.approx(full.distances, rel=1e-5)
    # A finished run restarts the schedule from its w and noise.
    again = project(G, target, num_steps=5, space=space, distance="mse", seed=4, resume=load_projection(_saved(tmp_path, rest)))
    assert again.step == again.num_steps == 5 and len(again.distances) == 5
    with pytest.raises(ValueError, match="not 'w"):
        project(G, target, num_steps=5, space="w" if space == "w+" else "w+", distance="mse", resume=loaded)


def _saved(tmp_path, result):
    path = tmp_path / "done.npz"
    save_projection(path, result)
    return path


class _FakeLpips(torch.nn.Module):
    """Stands in for the LPIPS VGG16 (whose weights are not available offline); records what it is fed."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3).requires_grad_(False)
        self.seen: list[torch.Tensor] = []

    def lpips_embedding(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach())
        return self.conv(x / 255).flatten(1)


def test_lpips_distance_is_embedding_squared_distance():
    G = _tiny(img_channels=1)
    target = _generated(G, 2)
    vgg = _FakeLpips()
    result = project(G, target, num_steps=3, distance="lpips", vgg=vgg, seed=0)
    assert result.metric == "lpips" and len(vgg.seen) == 1 + 3 + 1  # target, each step, the final evaluation
    assert all(x.shape == (1, 3, 16, 16) for x in vgg.seen)
    assert torch.allclose(vgg.seen[0], ((target + 1) * 127.5)[None].repeat(1, 3, 1, 1))  # [0, 255], gray repeated to RGB
    with torch.no_grad():
        expected = (vgg.lpips_embedding(vgg.seen[0]) - vgg.lpips_embedding(vgg.seen[4])).square().sum()
    assert result.distance == pytest.approx(float(expected), rel=1e-6)

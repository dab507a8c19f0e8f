"""Per-image path lengths (StyleGAN2 Fig. 5) with the pixel-MSE stand-in, against a direct computation."""

import numpy as np
import pytest
import torch

import stylegan
from stylegan.analysis import ppl
from stylegan.metrics.fid import index_seed
from stylegan.metrics.perceptual import PPL_EPSILON, randomize_noise


def test_pixel_embedding_is_mse():
    a, b = torch.rand(2, 3, 8, 8) * 255, torch.rand(2, 3, 8, 8) * 255
    e = ppl.PixelEmbedding()
    d = (e.lpips_embedding(a) - e.lpips_embedding(b)).square().sum(1)
    torch.testing.assert_close(d, ((a - b) * (2 / 255)).square().mean([1, 2, 3]))


def test_values_percentiles_and_extremes(parity_dir):
    G = stylegan.load_network(parity_dir / "sg2_32").generator
    result, lowest, highest = ppl.ppl_samples(G, num_samples=7, seed=5, distance="pixel-mse", num_extremes=3)
    assert (result.distance, result.space, result.sampling, result.epsilon) == ("pixel-mse", "w", "end", 1e-4)
    values = np.array(result.values)
    assert values.shape == (7,) and (values > 0).all()
    # sample 2 is the first of batch 1: redo it by hand
    Gc = G.__class__(G.config).eval().requires_grad_(False)
    Gc.load_state_dict(G.state_dict())
    rng = torch.Generator().manual_seed(index_seed(5, 1))
    z = torch.randn([4, G.z_dim], generator=rng)
    randomize_noise(Gc, rng)
    with torch.no_grad():
        w0, w1 = Gc.mapping(z, None).chunk(2)
        img = Gc.synthesis(torch.cat([w0, w0.lerp(w1, PPL_EPSILON)]), noise_mode="const")  # the batch as the metric runs it
    pixels = (img + 1) * (255 / 2) * (2 / 255) - 1
    expected = ((pixels[0] - pixels[2]).square().mean() / PPL_EPSILON**2).item()
    assert values[2] == pytest.approx(expected, rel=1e-3)
    assert result.percentiles == {q: pytest.approx(np.percentile(values, int(q))) for q in ("10", "50", "90")}
    assert result.lowest == np.argsort(values)[:3].tolist() and result.highest == np.argsort(values)[::-1][:3].tolist()
    assert lowest.shape == highest.shape == (3, 3, 32, 32)
    if 2 in result.lowest:
        torch.testing.assert_close(lowest[result.lowest.index(2)], img[0], atol=1e-5, rtol=1e-5)
    if 2 in result.highest:
        torch.testing.assert_close(highest[result.highest.index(2)], img[0], atol=1e-5, rtol=1e-5)


def test_embedding_override_and_bad_distance(parity_dir):
    G = stylegan.load_network(parity_dir / "sg2_32").generator

    class Zero:
        def lpips_embedding(self, img):
            return torch.zeros(img.shape[0], 1)

    result, _, _ = ppl.ppl_samples(G, num_samples=2, distance="lpips", vgg=Zero(), num_extremes=1)
    assert result.values == [0.0, 0.0] and result.distance == "lpips"
    with pytest.raises(ValueError, match="distance must be one of"):
        ppl.ppl_samples(G, num_samples=2, distance="l2")

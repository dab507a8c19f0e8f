import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from stylegan.metrics import perceptual, registry
from stylegan.metrics.detectors import DetectorUnavailable
from stylegan.metrics.perceptual import (coverage, filtered_mean, knn_radii, ppl_distances, precision_recall,
                                         randomize_noise)
from stylegan.metrics.registry import MetricOptions
from stylegan.metrics.vgg import LPIPS_CHANNELS, VGG16
from stylegan.models.stylegan2 import Generator
from stylegan.training.presets import network_preset


@pytest.fixture(scope="module")
def vgg() -> VGG16:
    torch.manual_seed(0)
    net = VGG16().eval().requires_grad_(False)
    for i in range(len(LPIPS_CHANNELS)):
        getattr(net, f"lin{i}").weight.abs_()
    return net


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(1)
    g_cfg, _ = network_preset("sg2-32", img_channels=1)
    return Generator(g_cfg).eval().requires_grad_(False)


def _opts(**kwargs) -> MetricOptions:
    return MetricOptions(G=kwargs.pop("G", None), dataset=kwargs.pop("dataset", None), **kwargs)


# ----------------------------------------------------------------------------- precision and recall


def _np_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return d.astype(np.float16).astype(np.float64)  # the official code keeps distances in float16


def _np_precision_recall(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    real = real.astype(np.float16).astype(np.float64)
    gen = gen.astype(np.float16).astype(np.float64)

    def radii(m):  # distance to the (k+1)-th nearest point, the point itself included
        return np.sort(_np_distances(m, m), axis=1)[:, k]

    def cover(probes, m):
        return float(np.mean([any(_np_distances(p[None], m)[0, j] <= r for j, r in enumerate(radii(m))) for p in probes]))

    return cover(gen, real), cover(real, gen)


def test_knn_radius_definition():
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    assert knn_radii(points, 1, _opts()).tolist() == [1, 1, 2, 3, 4]
    assert knn_radii(points, 3, _opts()).tolist() == [6, 5, 3, 5, 9]
    assert knn_radii(points, 3, _opts(), batch=2).tolist() == [6, 5, 3, 5, 9]
    assert coverage(torch.tensor([[-6.5], [4.5], [21.0]]), points, knn_radii(points, 1, _opts()), _opts()) == pytest.approx(1 / 3)


@pytest.mark.parametrize("kind", ["integer", "gaussian"])
@pytest.mark.parametrize("batch", [7, 10_000])
def test_precision_recall_brute_force(kind, batch):
    rng = np.random.RandomState(0)
    if kind == "integer":  # exact distances: ties are decided by `<=` alone
        real, gen = rng.randint(-4, 5, [60, 8]), rng.randint(-3, 4, [45, 8]) + 1
    else:
        real, gen = rng.randn(60, 16), rng.randn(45, 16) * 1.3 + 0.4
    expected = _np_precision_recall(real, gen, k=3)
    got = precision_recall(torch.tensor(real, dtype=torch.float32), torch.tensor(gen, dtype=torch.float32), _opts(),
                           k=3, batch=batch)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1


def test_precision_recall_rank_shares_add_up(monkeypatch):
    monkeypatch.setattr(perceptual, "all_reduce_sum", lambda x, opts: x)  # what each rank contributes
    rng = torch.Generator().manual_seed(4)
    real, gen = torch.randn(50, 6, generator=rng), torch.randn(40, 6, generator=rng) + 0.5
    full = knn_radii(real, 3, _opts(), batch=8)
    parts = [knn_radii(real, 3, _opts(rank=r, num_gpus=3), batch=8) for r in range(3)]
    assert torch.equal(sum(parts), full)
    shares = [coverage(gen, real, full, _opts(rank=r, num_gpus=3), batch=8) for r in range(3)]
    assert sum(shares) == pytest.approx(coverage(gen, real, full, _opts(), batch=8), abs=1e-12)


class _RecordingFeatures(torch.nn.Module):
    """A cheap stand-in for VGG16 fc7 that records what it is shown."""

    def __init__(self):
        super().__init__()
        self.proj = torch.randn(3 * 4 * 4, 4096, generator=torch.Generator().manual_seed(5))
        self.seen: list[torch.Tensor] = []

    def forward(self, images):
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.seen.append(images.clone())
        return F.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1) @ self.proj


def test_pr50k3_full_end_to_end(monkeypatch, tmp_path, G):
    rng = np.random.RandomState(6)
    real_images = rng.randint(0, 256, [10, 32, 32]).astype(np.uint8)
    for i, img in enumerate(real_images):
        Image.fromarray(img, "L").save(tmp_path / f"{i:02}.png")
    stand_in = _RecordingFeatures()
    monkeypatch.setattr(perceptual, "load_vgg16", lambda **kwargs: stand_in)
    G_before = copy.deepcopy(G.state_dict())

    results = perceptual.pr50k3_full(_opts(G=G, dataset=str(tmp_path), num_gen=7, batch_size=4, seed=2))
    assert set(results) == {"pr73_full_precision", "pr73_full_recall"}  # the name records num_gen

    seen = torch.cat(stand_in.seen)
    assert seen.shape == (17, 3, 32, 32)
    assert torch.equal(seen[:10], torch.from_numpy(real_images)[:, None].repeat(1, 3, 1, 1))  # in order, grey -> RGB
    features = (F.adaptive_avg_pool2d(seen.float() / 255, 4).flatten(1) @ stand_in.proj).numpy()
    precision, recall = _np_precision_recall(features[:10], features[10:], k=3)
    assert results == pytest.approx({"pr73_full_precision": precision, "pr73_full_recall": recall}, abs=1e-12)
    assert all(torch.equal(v, G_before[k]) for k, v in G.state_dict().items())
    assert registry.METRICS["pr50k3_full"] is perceptual.pr50k3_full and "pr50k3_full" in registry.COUNTED

    stand_in.seen.clear()  # a folder of generated images instead of G: its first num_gen files
    again = perceptual.pr50k3_full(_opts(G=None, dataset=str(tmp_path), images=str(tmp_path), num_gen=6, batch_size=4))
    seen = torch.cat(stand_in.seen)
    assert seen.shape == (16, 3, 32, 32) and torch.equal(seen[10:], seen[:6])
    precision, recall = _np_precision_recall(features[:10], features[:6], k=3)
    assert again == pytest.approx({"pr63_full_precision": precision, "pr63_full_recall": recall}, abs=1e-12)
    assert precision == 1  # the generated images are real ones
    with pytest.raises(ValueError, match="holds 10 images but the metric needs 11"):
        perceptual.pr50k3_full(_opts(G=None, dataset=str(tmp_path), images=str(tmp_path), num_gen=11))


# ----------------------------------------------------------------------------- perceptual path length


def _naive_ppl(G, vgg, z, c, epsilon):
    """One pair at a time: LPIPS between the images at w0 and w0 + ε (w1 - w0), over ε²."""
    n = z.shape[0] // 2
    out = []
    for i in range(n):
        w0 = G.mapping(z[i:i + 1], c[i:i + 1])
        w1 = G.mapping(z[n + i:n + i + 1], c[i:i + 1])
        a = G.synthesis(w0, noise_mode="const", force_fp32=True)
        b = G.synthesis(w0 + epsilon * (w1 - w0), noise_mode="const", force_fp32=True)
        a, b = (((img + 1) * 127.5).repeat(1, 3, 1, 1) for img in (a, b))
        out.append(float(vgg.lpips(a, b)[0]) / epsilon ** 2)
    return np.array(out)


@pytest.mark.parametrize("epsilon", [1e-2, 1e-4])
def test_ppl_distances_naive(G, vgg, epsilon):
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(7))
    c = torch.zeros(3, 0)
    with torch.no_grad():
        expected = _naive_ppl(G, vgg, z, c, epsilon)
    got = ppl_distances(G, vgg, z, c, epsilon).numpy()
    assert got.shape == (3,) and (got > 0).all()
    np.testing.assert_allclose(got, expected, rtol=1e-3 if epsilon == 1e-2 else 2e-2)


def _naive_filtered_mean(values):
    s = sorted(values)
    lo = s[math.floor(0.01 * (len(s) - 1))]
    hi = s[math.ceil(0.99 * (len(s) - 1))]
    kept = [v for v in values if lo <= v <= hi]
    return sum(kept) / len(kept)


@pytest.mark.parametrize("n", [1, 7, 250, 1001])
def test_filtered_mean(n):
    rng = np.random.RandomState(n)
    values = np.concatenate([rng.lognormal(size=n - n // 10), rng.randint(0, 3, n // 10).astype(np.float64)])
    assert filtered_mean(values) == pytest.approx(_naive_filtered_mean(values.tolist()), rel=1e-12)


def test_randomize_noise(G):
    g = copy.deepcopy(G)
    before = dict(g.named_buffers())
    before = {k: v.clone() for k, v in before.items()}
    randomize_noise(g, torch.Generator().manual_seed(8))
    noise = [k for k in before if k.endswith(".noise_const")]
    assert noise
    for name, buf in g.named_buffers():
        assert torch.equal(buf, before[name]) == (name not in noise)


def test_ppl2_wend_protocol(monkeypatch, G, vgg):
    monkeypatch.setattr(perceptual, "load_vgg16", lambda **kwargs: vgg)
    noise_before = {k: v.clone() for k, v in G.named_buffers()}
    result = perceptual.ppl2_wend(_opts(G=G, num_gen=5, batch_size=2, seed=3))

    dists = []
    g = copy.deepcopy(G)
    for b in range(3):  # batch b draws z, then the noise, from the stream seeded by (seed, b); the last one is cut
        rng = torch.Generator().manual_seed(int(np.random.SeedSequence([3, b]).generate_state(1)[0]))
        z = torch.randn(4, G.z_dim, generator=rng)
        randomize_noise(g, rng)
        dists.append(ppl_distances(g, vgg, z, torch.zeros(2, 0), 1e-4))
    assert result == {"ppl2_wend_5": pytest.approx(filtered_mean(torch.cat(dists)[:5].numpy()), rel=1e-6)}
    assert all(torch.equal(v, noise_before[k]) for k, v in G.named_buffers())
    assert registry.METRICS["ppl2_wend"] is perceptual.ppl2_wend


def test_metrics_fail_before_any_work_without_weights(monkeypatch, tmp_path):
    import urllib.error
    import urllib.request

    def offline(url, timeout=None):
        raise urllib.error.URLError("offline for the test")

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for name in ("ppl2_wend", "pr50k3_full"):  # a G that is no network: any work on it would fail differently
        with pytest.raises(DetectorUnavailable, match=f"^{name} needs weights it cannot download .*fetch https://"):
            registry.METRICS[name](_opts(G=object(), dataset=str(tmp_path)))

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.metrics import registry
from stylegan.metrics.fid import frechet_distance
from stylegan.metrics.pixel_fd import pixel_features
from stylegan.metrics.registry import (MetricOptions, MetricResult, compute, format_time, is_valid_metric,
                                       list_valid_metrics, register_metric, report_metric)
from stylegan.models.stylegan2 import Generator
from stylegan.training.presets import network_preset

OFFICIAL_KEYS = ["results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl", "timestamp"]


def _psd_sqrt(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _random_stats(rng, dim, n):
    x = rng.randn(n, dim) @ rng.randn(dim, dim)
    return x.mean(0), np.cov(x, rowvar=False)


def test_frechet_distance_brute_force():
    rng = np.random.RandomState(0)
    mu1, s1 = _random_stats(rng, 6, 50)
    mu2, s2 = _random_stats(rng, 6, 50)
    # tr sqrt(s1 s2) = tr sqrt(A s2 A) with A = sqrt(s1), a symmetric PSD matrix
    a = _psd_sqrt(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(a @ s2 @ a))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(mu1, s1, mu1 + 1, s1) == pytest.approx(6, rel=1e-6)


def test_pixel_features():
    img = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(2, 3, 4, 4)  # 16x16
    f = pixel_features(img * 10)
    assert f.shape == (2, 3 * 64) and f.dtype == torch.float64
    expected = np.array([[2.5, 4.5], [10.5, 12.5]]) * 10 / 255  # means of the 2x2 blocks of the tile
    np.testing.assert_allclose(f[0, :64].view(8, 8)[:2, :2].numpy(), expected)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.RandomState(0)
    labels = []
    for i in range(32):
        name = f"img{i:05d}.png"
        Image.fromarray(rng.randint(0, 256, [32, 32], dtype=np.uint8), "L").save(root / name)
        labels.append([name, i % 10])
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    return root


@pytest.fixture(scope="module")
def g_cond():
    torch.manual_seed(0)
    g, _ = network_preset("sg2-32", img_channels=1, c_dim=10)
    return Generator(g).eval()


def test_compute_pfd(dataset_dir, g_cond, tmp_path):
    opts = MetricOptions(G=g_cond, dataset=str(dataset_dir), num_gen=64, batch_size=16, mirror=True)
    result = compute("pfd5k_full", opts)
    value = result.results["pfd64_full"]
    assert list(result.results) == ["pfd64_full"] and math.isfinite(value) and value > 0
    assert result.metric == "pfd64_full" and result.num_gpus == 1 and result.total_time >= 0
    assert compute("pfd5k_full", opts).results == result.results  # seeded
    assert g_cond.training is False and all(p.requires_grad for p in g_cond.parameters())  # G left alone
    line = json.loads(result.to_json())
    assert list(line) == OFFICIAL_KEYS and line["results"] == result.results
    with pytest.raises(ValueError):
        compute("pfd5k_full", MetricOptions(G=g_cond, dataset=None))


def test_registry_and_report(tmp_path):
    assert is_valid_metric("pfd5k_full") and "pfd5k_full" in list_valid_metrics()
    with pytest.raises(ValueError, match="pfd5k_full"):
        compute("fid99k_full", MetricOptions(G=torch.nn.Identity(), dataset=None))

    @register_metric
    def test_constant(opts):
        return {"test_constant": 3, "extra": 1.5}

    try:
        assert is_valid_metric("test_constant")
        result = compute("test_constant", MetricOptions(G=torch.nn.Identity(), dataset=None, num_gpus=1))
    finally:
        del registry.METRICS["test_constant"]
    assert result.results == {"test_constant": 3.0, "extra": 1.5}
    run = tmp_path / "run"
    report_metric(result, run)
    report_metric(result, run, snapshot_pkl=str(run / "network-snapshot-000100.pkl"))
    report_metric(result, None)  # no run dir: nothing written
    lines = [json.loads(s) for s in (run / "metric-test_constant.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(list(line) == OFFICIAL_KEYS for line in lines)
    assert lines[0]["snapshot_pkl"] is None and lines[1]["snapshot_pkl"] == "network-snapshot-000100.pkl"
    assert lines[1]["results"] == {"test_constant": 3.0, "extra": 1.5}


def test_result_to_json_values():
    r = MetricResult("m", {"m": 1.0}, 65.2, "1m 05s", 2, "x.pkl", timestamp=10.0)
    assert json.loads(r.to_json()) == {"results": {"m": 1.0}, "metric": "m", "total_time": 65.2,
                                        "total_time_str": "1m 05s", "num_gpus": 2, "snapshot_pkl": "x.pkl",
                                        "timestamp": 10.0}


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (12.4, "12s"), (59.4, "59s"), (60, "1m 00s"), (184, "3m 04s"), (3599, "59m 59s"),
    (3723, "1h 02m 03s"), (86399, "23h 59m 59s"), (2 * 86400 + 3 * 3600 + 4 * 60 + 5, "2d 03h 04m"),
])
def test_format_time(seconds, text):
    assert format_time(seconds) == text

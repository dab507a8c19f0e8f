"""Inception metrics as NVIDIA's `metrics/` defines them: FID, KID, IS, and StyleGAN-XL's rFID and sFID.

| metric | real images | generated | features |
|---|---|---|---|
| `fid50k_full` | all (x-flips too with `mirror`) | 50k | pool (2048) |
| `fid50k` | first 50k | 50k | pool |
| `kid50k_full` | first 1M | 50k | pool; 100 subsets of <= 1000, cubic polynomial kernel |
| `is50k` | - | 50k | logits (no bias) -> softmax; 10 splits; needs NVIDIA's weights |
| `rfid50k_full` | all | 50k | pool of a randomly initialised Inception (fixed seed; not StyleGAN-XL's file) |
| `sfid50k_full` | all | 50k | `mixed_6/conv`, first 7 channels (2023) |

`num_gen` replaces the 50k and the name records it (`fid1k_full`, `is64_mean`; see `registry.counted_name`).
Generated images come from `G(z, c)` with the z, label (drawn from the dataset's) and noise inputs of image i
drawn from a generator seeded by `(seed, i)`, so the images depend neither on the batch size nor on how many
processes share the work; or from the files of `images` in their listed order. Real-data statistics are cached under `cache_dir()/gan-metrics`,
keyed by the dataset's content (a zip's member names, sizes and CRCs; a folder's names, sizes and mtimes),
the detector's SHA-256 and the options. With several processes each one extracts its share and the sums
are added up (`all_reduce_sum`), so every rank returns the numbers one process would.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import ImageDataset
from ..io.images import to_uint8
from ..models.common import Generator
from ..ops.misc import per_sample_noise
from . import detectors
from .inception import LOGITS_DIM, POOL_DIM, SPATIAL_DIM, InceptionV3
from .registry import MetricOptions, all_reduce_sum, counted_name, rank_share, register_metric

CACHE_VERSION = 1


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)) in float64.

    sigma1 sigma2 is similar to the symmetric PSD matrix R sigma2 R with R = sqrt(sigma1), so the trace of its
    square root is the sum of the square roots of R sigma2 R's eigenvalues: two symmetric eigensolves, seconds
    at 2048 dimensions where `scipy.linalg.sqrtm` (NVIDIA's form) takes minutes on a CPU; the two agree to
    ~1e-8 relative even for rank-deficient covariances (tests/metrics/test_fid.py).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape == mu1.shape * 2, "mismatched statistics"
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(root @ sigma2 @ root)
    tr_covmean = np.sqrt(np.clip(lam, 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def kernel_inception_distance(real: np.ndarray, gen: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0) -> float:
    """NVIDIA's KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets of
    m = min(len(real), len(gen), max_subset_size) features drawn without replacement (generated first)."""
    assert real.ndim == gen.ndim == 2 and real.shape[1] == gen.shape[1], f"features {real.shape} vs {gen.shape}"
    n = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    assert m >= 2, "KID needs at least 2 real and 2 generated features"
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)


def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """NVIDIA's IS: mean and std over `num_splits` contiguous splits of exp(E KL(p(y|x) || p(y)))."""
    assert logits.ndim == 2 and len(logits) >= num_splits, f"need >= {num_splits} logit rows, got {logits.shape}"
    x = logits.astype(np.float64)
    probs = np.exp(x - x.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores = []
    for i in range(num_splits):
        part = probs[i * len(probs) // num_splits:(i + 1) * len(probs) // num_splits]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


# ----------------------------------------------------------------------------- feature statistics

@dataclass
class FeatureStats:
    """Features of a set of images: count and raw moments (for FID), or every feature row (for KID and IS)."""

    count: int
    total: np.ndarray | None = None  # [D] float64, sum of rows
    outer: np.ndarray | None = None  # [D, D] float64, sum of row outer products
    rows: np.ndarray | None = None  # [N, D] float32

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and population covariance (as NVIDIA's FeatureStats)."""
        if self.total is not None:
            mean = self.total / self.count
            return mean, self.outer / self.count - np.outer(mean, mean)
        rows = self.rows.astype(np.float64)
        mean = rows.mean(0)
        return mean, rows.T @ rows / len(rows) - np.outer(mean, mean)

    def save(self, path: Path) -> None:
        arrays = {k: v for k, v in (("total", self.total), ("outer", self.outer), ("rows", self.rows)) if v is not None}
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, count=np.int64(self.count), **arrays)
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> FeatureStats:
        with np.load(path, allow_pickle=False) as z:
            return FeatureStats(int(z["count"]), *(z[k] if k in z else None for k in ("total", "outer", "rows")))


@dataclass
class Detector:
    """A feature network, the output it is asked for, and its identity (for the statistics cache)."""

    net: InceptionV3
    output: str  # "pool", "spatial" or "logits"
    identity: str

    @property
    def dim(self) -> int:
        return {"pool": POOL_DIM, "spatial": SPATIAL_DIM, "logits": LOGITS_DIM}[self.output]


def _detector(opts: MetricOptions, output: str = "pool", random: bool = False) -> Detector:
    """Resolve and load the detector before any image is made (fails with DetectorUnavailable)."""
    if random:
        net, identity = detectors.random_inception()
    else:
        net, identity = detectors.load_inception(detectors.inception_path(opts.detector, need_logits=output == "logits"))
        if output == "logits" and not net.has_logits:
            raise detectors.DetectorUnavailable(
                f"is50k needs the Inception's output layer, which {identity} lacks: fetch "
                f"{detectors.NVIDIA_INCEPTION_URL} and pass it with --detector PATH (or put it at "
                f"{detectors.cache_dir() / 'detectors' / detectors.NVIDIA_INCEPTION_FILE})")
    return Detector(net=net, output=output, identity=identity)


# The Inception output each metric needs (rfid50k_full builds its own random network, needing no file).
INCEPTION_OUTPUTS = {"fid50k_full": "pool", "fid50k": "pool", "kid50k_full": "pool", "sfid50k_full": "spatial",
                     "is50k": "logits"}


def check_detectors(names: Iterable[str], opts: MetricOptions) -> None:
    """Resolve and load the weights every metric in `names` needs, so that a missing file stops a run of
    several metrics before the first one starts (DetectorUnavailable)."""
    for name in names:
        if name in INCEPTION_OUTPUTS:
            try:
                _detector(opts, INCEPTION_OUTPUTS[name])
            except detectors.DetectorUnavailable as e:
                raise detectors.DetectorUnavailable(f"{name}: {e}") from None


def _progress(total: int, desc: str, opts: MetricOptions) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not opts.progress or opts.rank != 0, leave=False)


def _extract(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], num: int, local: int, det: Detector,
             keep_rows: bool, opts: MetricOptions, desc: str) -> FeatureStats:
    """Features of `num` images; `batches` yields this rank's `local` ones as (global indices, uint8 images).
    Summed over ranks."""
    device = torch.device(opts.device)
    net = det.net.to(device)
    acc = device if device.type == "cuda" else torch.device("cpu")  # float64 sums (MPS has no float64)
    d = det.dim
    # every feature row: on the CPU in one process (1M x 2048 floats for kid50k_full), on the device to all-reduce
    rows_at = torch.device("cpu") if opts.num_gpus == 1 else device
    rows = torch.zeros([num, d], dtype=torch.float32, device=rows_at) if keep_rows else None
    total = None if keep_rows else torch.zeros([d], dtype=torch.float64, device=acc)
    outer = None if keep_rows else torch.zeros([d, d], dtype=torch.float64, device=acc)
    with _progress(local, desc, opts) as bar, torch.no_grad():
        for index, images in batches:
            f = net(images.to(device), outputs=(det.output,))[det.output]
            assert f.shape == (len(index), d), f"features {tuple(f.shape)} for {len(index)} images"
            if keep_rows:
                rows[index.to(rows_at)] = f.float().to(rows_at)
            else:
                f64 = f.to(acc).double()
                total += f64.sum(0)
                outer += f64.T @ f64
            bar.update(len(index))
    if keep_rows:
        return FeatureStats(num, rows=all_reduce_sum(rows, opts).cpu().numpy())
    total = all_reduce_sum(total.to(device), opts).cpu().numpy()
    outer = all_reduce_sum(outer.to(device), opts).cpu().numpy()
    return FeatureStats(num, total=total, outer=outer)


def dataset_batches(dataset: ImageDataset, num: int, opts: MetricOptions) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share of the first `num` items of `dataset`."""
    share = list(rank_share(num, opts))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, share), batch_size=opts.batch_size)
    for start, (images, _) in zip(range(0, len(share), opts.batch_size), loader):
        yield torch.tensor(share[start:start + len(images)]), images


def generator_share(num: int, opts: MetricOptions) -> list[tuple[int, int, int]]:
    """(global batch number, first image, batch size) of the generated batches this rank makes."""
    batches = rank_share(-(-num // opts.batch_size), opts)
    return [(b, b * opts.batch_size, min(opts.batch_size, num - b * opts.batch_size)) for b in batches]


def index_seed(seed: int, index: int) -> int:
    """The seed of item `index` of a seeded stream (a generated image, a PPL batch): the same on every process
    and whatever the batching."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@torch.no_grad()
def generator_batches(G: Generator, labels: ImageDataset | None, num: int,
                       opts: MetricOptions) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share of `num` generated uint8 images; image i's z, label and noise come from its own
    generator seeded by `index_seed(opts.seed, i)` (the label: a dataset label, or with `uniform_classes` a uniform class)."""
    device = torch.device(opts.device)
    for _, start, size in generator_share(num, opts):
        gens = [torch.Generator().manual_seed(index_seed(opts.seed, i)) for i in range(start, start + size)]
        z = torch.stack([torch.randn([G.z_dim], generator=g) for g in gens])
        c = torch.zeros([size, G.c_dim])
        if G.c_dim > 0 and opts.uniform_classes:
            c = torch.nn.functional.one_hot(torch.cat([torch.randint(G.c_dim, [1], generator=g) for g in gens]), G.c_dim).float()
        elif G.c_dim > 0:
            c = torch.stack([labels.get_label(int(torch.randint(len(labels), [1], generator=g))) for g in gens])
        with per_sample_noise(gens):
            img = G(z.to(device), c.to(device))
        yield torch.arange(start, start + size), to_uint8(img)


def _dataset_fingerprint(path: Path) -> str:
    """A digest of a dataset's content listing: zip member names, sizes and CRCs; folder file names, sizes, mtimes."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
    return h.hexdigest()


def _cache_flag(exists: bool, opts: MetricOptions) -> bool:
    """Rank 0's view of whether the cache file exists, shared with every rank."""
    flag = torch.tensor([float(exists and opts.rank == 0)], device=opts.device)
    return bool(all_reduce_sum(flag, opts).item() > 0)


def _real_stats(opts: MetricOptions, det: Detector, max_items: int | None, keep_rows: bool) -> FeatureStats:
    """Features of the real images (the first `max_items`; x-flips appended with `mirror`), cached on disk."""
    dataset = ImageDataset(opts.dataset, xflip=opts.mirror, use_labels=False)
    try:
        num = len(dataset) if max_items is None else min(len(dataset), max_items)
        cache_file = None
        if opts.cache:
            key = json.dumps(dict(version=CACHE_VERSION, data=_dataset_fingerprint(dataset.path), detector=det.identity,
                                  output=det.output, mirror=opts.mirror, num=num, rows=keep_rows), sort_keys=True)
            tag = hashlib.sha256(key.encode()).hexdigest()[:32]
            cache_file = detectors.cache_dir() / "gan-metrics" / f"{dataset.name}-{det.identity.split('-')[0]}-{tag}.npz"
            if _cache_flag(cache_file.is_file(), opts):
                return FeatureStats.load(cache_file)
        stats = _extract(dataset_batches(dataset, num, opts), num, len(rank_share(num, opts)), det, keep_rows, opts,
                         "real features")
    finally:
        dataset.close()
    if cache_file is not None and opts.rank == 0:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        stats.save(cache_file)
    return stats


@contextlib.contextmanager
def generated_batches(opts: MetricOptions, num: int, name: str) -> Iterator[tuple[Iterator[tuple[torch.Tensor, torch.Tensor]], int]]:
    """(batches, count) of this rank's share of `num` generated images: the first `num` files of `opts.images`, or
    images of `opts.G` (labels drawn from `opts.dataset` for a conditional G), seeded per batch."""
    if opts.images is not None:
        folder = ImageDataset(opts.images, use_labels=False)
        try:
            if len(folder) < num:
                raise ValueError(f"{name}: {opts.images} holds {len(folder)} images but the metric needs {num} "
                                 f"(set num_gen / --num-gen {len(folder)})")
            yield dataset_batches(folder, num, opts), len(rank_share(num, opts))
        finally:
            folder.close()
        return
    if opts.G is None:
        raise ValueError(f"{name} needs a generator or a folder of generated images")
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    labels = None
    if G.c_dim > 0:
        if opts.dataset is None:
            raise ValueError(f"{name}: the generator is conditional, so labels must come from a dataset")
        labels = ImageDataset(opts.dataset)
        if labels.label_dim != G.c_dim:
            labels.close()
            raise ValueError(f"{name}: the generator takes {G.c_dim}-dim labels but the dataset has {labels.label_dim}")
    try:
        yield generator_batches(G, labels, num, opts), sum(size for _, _, size in generator_share(num, opts))
    finally:
        if labels is not None:
            labels.close()


def _generated_stats(opts: MetricOptions, det: Detector, num: int, keep_rows: bool, name: str) -> FeatureStats:
    """Features of `num` generated images: from G, or the first `num` files of `opts.images`."""
    with generated_batches(opts, num, name) as (batches, local):
        return _extract(batches, num, local, det, keep_rows, opts, "generated features")


def _num_gen(opts: MetricOptions, minimum: int = 2) -> int:
    num = 50000 if opts.num_gen is None else opts.num_gen
    if num < minimum:
        raise ValueError(f"num_gen={num}: the metric needs at least {minimum} generated images")
    return num


def _fid(opts: MetricOptions, name: str, max_real: int | None, output: str = "pool", random: bool = False) -> dict[str, float]:
    if opts.dataset is None:
        raise ValueError(f"{name} needs a dataset")
    num = _num_gen(opts)
    det = _detector(opts, output, random)
    mu_real, sigma_real = _real_stats(opts, det, max_real, keep_rows=False).mean_cov()
    mu_gen, sigma_gen = _generated_stats(opts, det, num, keep_rows=False, name=name).mean_cov()
    return {counted_name(name, opts.num_gen): frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)}


@register_metric(counted=True, needs_data=True)
def fid50k_full(opts: MetricOptions) -> dict[str, float]:
    """FID: every real image (x-flips too with `mirror`) vs 50k generated."""
    return _fid(opts, "fid50k_full", max_real=None)


@register_metric(counted=True, needs_data=True)
def fid50k(opts: MetricOptions) -> dict[str, float]:
    """FID: the first 50k real images vs 50k generated."""
    return _fid(opts, "fid50k", max_real=50000)


@register_metric(counted=True, needs_data=True)
def rfid50k_full(opts: MetricOptions) -> dict[str, float]:
    """Random FID: FID in a randomly initialised Inception (fixed seed; ours, not StyleGAN-XL's weights file)."""
    return _fid(opts, "rfid50k_full", max_real=None, random=True)


@register_metric(counted=True, needs_data=True)
def sfid50k_full(opts: MetricOptions) -> dict[str, float]:
    """Spatial FID: FID of the first 7 `mixed_6/conv` channels (17x17), every real image vs 50k generated."""
    return _fid(opts, "sfid50k_full", max_real=None, output="spatial")


@register_metric(counted=True, needs_data=True)
def kid50k_full(opts: MetricOptions) -> dict[str, float]:
    """KID: up to 1M real images vs 50k generated, 100 subsets of at most 1000."""
    if opts.dataset is None:
        raise ValueError("kid50k_full needs a dataset")
    num = _num_gen(opts)
    det = _detector(opts)
    real = _real_stats(opts, det, 1000000, keep_rows=True).rows
    gen = _generated_stats(opts, det, num, keep_rows=True, name="kid50k_full").rows
    return {counted_name("kid50k_full", opts.num_gen): kernel_inception_distance(real, gen, 100, 1000, seed=opts.seed)}


@register_metric(counted=True)
def is50k(opts: MetricOptions) -> dict[str, float]:
    """Inception score of 50k generated images in 10 splits (needs NVIDIA's weights with the output layer)."""
    num = _num_gen(opts, minimum=10)
    det = _detector(opts, "logits")
    logits = _generated_stats(opts, det, num, keep_rows=True, name="is50k").rows
    mean, std = inception_score(logits, num_splits=10)
    name = counted_name("is50k", opts.num_gen)
    return {f"{name}_mean": mean, f"{name}_std": std}

"""VGG16-based metrics as NVIDIA's `metrics/` define them: `pr50k3_full` and `ppl2_wend`.

`pr50k3_full` is improved precision and recall (Kynkäänniemi et al. 2019) with k = 3 on the fc7 features of
up to 200,000 real images (the dataset in order, no x-flips) and 50,000 generated ones. Features are
stored as float16 and distances rounded to float16, as the official code does; a point's k-NN radius is the
(k+1)-th smallest distance to its own set, itself included. Precision is the share of generated points
inside some real point's radius, recall the share of real points inside some generated point's radius.

`ppl2_wend` is StyleGAN2's perceptual path length: W space, end-point sampling (t = 0), full image,
ε = 1e-4. Each sample maps z0, z1 to w0, w1 and measures LPIPS between synthesis(w0) and
synthesis(lerp(w0, w1, ε)) over ε², with fresh constant noise per batch (shared by the batch; the official
batch is 2 pairs) and images box-downsampled to 256x256 when larger. The result is the mean of the values
between the 1st ("lower") and 99th ("higher") percentiles.

Generated images for `pr50k3_full` are made as the FID metrics make them (`fid.generator_batches`: z,
label and noise of each image seeded by its index), or read from `opts.images`. PPL draws z, labels and then
the noise of pair-batch b (always 2 pairs, whatever `batch_size`) from the stream seeded by `(opts.seed, b)`.
Each rank takes its share of the images or batches and the results are summed over ranks, so the numbers do not
depend on the number of processes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import ImageDataset
from ..models.common import Generator
from .fid import dataset_batches, generated_batches, index_seed
from .registry import MetricOptions, all_reduce_sum, counted_name, rank_share, register_metric
from .vgg import VGG16, load_vgg16

PR_MAX_REAL = 200_000
PR_NUM_GEN = 50_000
PR_BATCH = 10_000  # rows and columns of the distance blocks, as official
PPL_NUM_SAMPLES = 50_000
PPL_EPSILON = 1e-4
PPL_BATCH = 2  # NVIDIA draws new noise buffers for every pair of samples; a larger batch would share them


# ----------------------------------------------------------------------------- precision and recall


def _distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [R, C] between float16 feature rows, computed in float32 and rounded to float16."""
    return torch.cdist(rows.to(torch.float32), cols.to(torch.float32)).to(torch.float16).to(torch.float32)


def knn_radii(manifold: torch.Tensor, k: int, opts: MetricOptions, batch: int = PR_BATCH) -> torch.Tensor:
    """float32 [N]: each point's distance to its (k+1)-th nearest point of `manifold` [N, D], itself included."""
    n = manifold.shape[0]
    assert manifold.ndim == 2 and n > k, f"need more than k={k} points, got {list(manifold.shape)}"
    radii = torch.zeros(n, dtype=torch.float32, device=manifold.device)
    for b in rank_share((n + batch - 1) // batch, opts):
        rows = manifold[b * batch:(b + 1) * batch].to(torch.float32)
        nearest = torch.empty(len(rows), 0, device=manifold.device)
        for cols in manifold.split(batch):
            nearest = torch.cat([nearest, _distances(rows, cols)], dim=1)
            nearest = nearest.topk(min(k + 1, nearest.shape[1]), dim=1, largest=False).values
        radii[b * batch:(b + 1) * batch] = nearest[:, k]
    return all_reduce_sum(radii, opts)


def coverage(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, opts: MetricOptions,
             batch: int = PR_BATCH) -> float:
    """Share of `probes` [M, D] within `radii[i]` of some `manifold[i]` ([N, D], [N])."""
    assert probes.ndim == manifold.ndim == 2 and probes.shape[1] == manifold.shape[1], "feature shapes differ"
    assert radii.shape == manifold.shape[:1], f"radii {list(radii.shape)} for {manifold.shape[0]} points"
    hits = torch.zeros([], dtype=torch.float64, device=probes.device)
    for b in rank_share((probes.shape[0] + batch - 1) // batch, opts):
        rows = probes[b * batch:(b + 1) * batch].to(torch.float32)
        inside = torch.zeros(len(rows), dtype=torch.bool, device=probes.device)
        for cols, r in zip(manifold.split(batch), radii.split(batch)):
            inside |= (_distances(rows, cols) <= r).any(dim=1)
        hits += inside.sum()
    return float(all_reduce_sum(hits, opts)) / probes.shape[0]


def precision_recall(real: torch.Tensor, gen: torch.Tensor, opts: MetricOptions, k: int = 3,
                     batch: int = PR_BATCH) -> tuple[float, float]:
    """Improved precision and recall of `gen` [M, D] against `real` [N, D] features (cast to float16)."""
    real, gen = real.to(torch.float16), gen.to(torch.float16)
    precision = coverage(gen, real, knn_radii(real, k, opts, batch), opts, batch)
    recall = coverage(real, gen, knn_radii(gen, k, opts, batch), opts, batch)
    return precision, recall


# ----------------------------------------------------------------------------- shared helpers


def _progress(total: int, desc: str, opts: MetricOptions) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not opts.progress or opts.rank != 0, leave=False)


def _to_rgb(images: torch.Tensor) -> torch.Tensor:
    return images.repeat([1, 3, 1, 1]) if images.shape[1] == 1 else images


@torch.no_grad()
def _fc7_features(vgg: VGG16, num: int, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], mine: int, desc: str,
                  opts: MetricOptions) -> torch.Tensor:
    """float16 [num, 4096]: fc7 features of this rank's `mine` images, given as (global indices, uint8 images)
    batches, pooled over ranks."""
    features = torch.zeros([num, 4096], dtype=torch.float16, device=opts.device)
    with _progress(mine, desc, opts) as bar:
        for index, images in batches:
            features[index.to(opts.device)] = vgg(_to_rgb(images.to(opts.device))).to(torch.float16)
            bar.update(len(index))
    return all_reduce_sum(features, opts)


def _generated_features(vgg: VGG16, num: int, opts: MetricOptions) -> torch.Tensor:
    """fc7 features of `num` generated images: from G (seeded per batch as the FID metrics do), or the first
    `num` files of `opts.images`."""
    with generated_batches(opts, num, "pr50k3_full") as (batches, local):
        return _fc7_features(vgg, num, batches, local, "pr generated", opts)


@register_metric(counted=True, needs_data=True)
def pr50k3_full(opts: MetricOptions) -> dict[str, float]:
    """Precision and recall (k=3): up to 200k real images (no x-flips) vs. 50,000 generated, VGG16 fc7 features.

    With `num_gen` set the keys record it (`pr1k3_full_precision` for 1000); `opts.images` replaces G.
    """
    if opts.dataset is None:
        raise ValueError("pr50k3_full needs a dataset")
    if opts.G is None and opts.images is None:
        raise ValueError("pr50k3_full needs a generator or a folder of generated images")
    num_gen = PR_NUM_GEN if opts.num_gen is None else opts.num_gen
    if num_gen < 4:
        raise ValueError(f"pr50k3_full needs at least 4 generated images, got num_gen={num_gen}")
    vgg = load_vgg16(lpips=False, device=opts.device, what="pr50k3_full")
    dataset = ImageDataset(opts.dataset, xflip=False, use_labels=False)
    try:
        num_real = min(len(dataset), PR_MAX_REAL)
        if num_real < 4:
            raise ValueError(f"pr50k3_full needs at least 4 real images, the dataset has {num_real}")
        real = _fc7_features(vgg, num_real, dataset_batches(dataset, num_real, opts), len(rank_share(num_real, opts)),
                             "pr real", opts)
    finally:
        dataset.close()
    gen = _generated_features(vgg, num_gen, opts)
    precision, recall = precision_recall(real, gen, opts, k=3)
    name = counted_name("pr50k3_full", opts.num_gen)
    return {f"{name}_precision": precision, f"{name}_recall": recall}


# ----------------------------------------------------------------------------- perceptual path length


def _labels(G: Generator, dataset: ImageDataset | None, n: int, rng: torch.Generator) -> torch.Tensor:
    """[n, c_dim] labels of random dataset images (empty for an unconditional G)."""
    if G.c_dim == 0:
        return torch.zeros([n, 0])
    return torch.stack([dataset.get_label(i) for i in torch.randint(len(dataset), [n], generator=rng).tolist()])


def randomize_noise(G: Generator, rng: torch.Generator) -> None:
    """Redraw every constant noise buffer (`*.noise_const`) of `G` from a standard normal."""
    for name, buf in G.named_buffers():
        if name.endswith(".noise_const"):
            buf.copy_(torch.randn(buf.shape, generator=rng))


@torch.no_grad()
def ppl_distances(G: Generator, vgg: VGG16, z: torch.Tensor, c: torch.Tensor, epsilon: float) -> torch.Tensor:
    """[B] LPIPS(synthesis(w0), synthesis(lerp(w0, w1, ε))) / ε² for z = [z0; z1] ([2B, z_dim]), labels c [B, c_dim].

    Images are synthesised in float32 with the constant noise buffers, box-downsampled to 256x256 when
    larger, scaled to [0, 255] (grey repeated to RGB) and compared through the LPIPS embedding.
    """
    assert z.ndim == 2 and z.shape[0] % 2 == 0 and z.shape[1] == G.z_dim, f"z must be [2B, {G.z_dim}], got {list(z.shape)}"
    assert c.shape == (z.shape[0] // 2, G.c_dim), f"c must be [{z.shape[0] // 2}, {G.c_dim}], got {list(c.shape)}"
    w0, w1 = G.mapping(z, torch.cat([c, c])).chunk(2)
    ws = torch.cat([w0, w0.lerp(w1, epsilon)])
    img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    factor = G.img_resolution // 256
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape([n, ch, h // factor, factor, w // factor, factor]).mean([3, 5])
    e0, e1 = vgg.lpips_embedding(_to_rgb((img + 1) * (255 / 2))).chunk(2)
    return (e0 - e1).square().sum(1) / epsilon ** 2


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the values between the 1st ("lower") and 99th ("higher") percentiles, as the official PPL."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


@register_metric(counted=True, needs_generator=True)
def ppl2_wend(opts: MetricOptions) -> dict[str, float]:
    """Perceptual path length in W, end-point sampling, full image, ε = 1e-4, 50,000 samples."""
    if opts.G is None:
        raise ValueError("ppl2_wend needs a generator")
    num = PPL_NUM_SAMPLES if opts.num_gen is None else opts.num_gen
    if num < 1:
        raise ValueError(f"ppl2_wend needs at least 1 sample, got num_gen={num}")
    vgg = load_vgg16(lpips=True, device=opts.device, what="ppl2_wend")
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    dataset = None
    if G.c_dim > 0:
        if opts.dataset is None:
            raise ValueError("ppl2_wend: the generator is conditional, so labels must come from a dataset")
        dataset = ImageDataset(opts.dataset)
        if dataset.label_dim != G.c_dim:
            dataset.close()
            raise ValueError(f"ppl2_wend: the generator takes {G.c_dim}-dim labels but the dataset has {dataset.label_dim}")
    bs = PPL_BATCH
    batches = (num + bs - 1) // bs
    dist = torch.zeros(batches * bs, dtype=torch.float32, device=opts.device)
    share = rank_share(batches, opts)
    try:
        with _progress(len(share) * bs, "ppl sampling", opts) as bar:
            for b in share:
                rng = torch.Generator().manual_seed(index_seed(opts.seed, b))
                z = torch.randn([bs * 2, G.z_dim], generator=rng)
                c = _labels(G, dataset, bs, rng)
                randomize_noise(G, rng)
                dist[b * bs:(b + 1) * bs] = ppl_distances(G, vgg, z.to(opts.device), c.to(opts.device), PPL_EPSILON)
                bar.update(bs)
    finally:
        if dataset is not None:
            dataset.close()
    return {counted_name("ppl2_wend", opts.num_gen): filtered_mean(all_reduce_sum(dist, opts)[:num].cpu().numpy())}

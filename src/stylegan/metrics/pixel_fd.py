"""`pfd5k_full`: a cheap pixel-statistics stand-in for FID, for CPU demos and smoke tests. It is NOT FID.

It applies the FID formula to 8x8 area-downsampled pixels (scaled to [0, 1]) instead of Inception
features: the Fréchet distance between Gaussian fits of all real images (x-flipped too with `mirror`) and
of 5000 generated ones (made as the FID metrics make them). It sees only coarse colour and layout, and its values are not comparable to FID.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.dataset import ImageDataset
from ..models.common import Generator
from .fid import frechet_distance, generator_batches, generator_share
from .registry import MetricOptions, all_reduce_sum, counted_name, rank_share, register_metric

FEATURE_RES = 8


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float64 [N, C * 8 * 8]: area-averaged 8x8 pixels in [0, 1]."""
    x = images.to(torch.float64) / 255
    return F.adaptive_avg_pool2d(x, FEATURE_RES).flatten(1)


def _mean_cov(batches: Iterator[torch.Tensor], channels: int, opts: MetricOptions) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) covariance of the features of uint8 image batches, pooled over all ranks."""
    dim = channels * FEATURE_RES ** 2
    sums = torch.zeros([1 + dim + dim * dim], dtype=torch.float64, device=opts.device)  # count, sum f, sum f f^T
    for images in batches:
        f = pixel_features(images)
        sums[0] += len(f)
        sums[1:1 + dim] += f.sum(0)
        sums[1 + dim:] += (f.T @ f).flatten()
    sums = all_reduce_sum(sums, opts).cpu().numpy()  # a rank without a share still takes part
    mu = sums[1:1 + dim] / sums[0]
    sigma = sums[1 + dim:].reshape(dim, dim) / sums[0] - np.outer(mu, mu)
    return mu, sigma


def _progress(total: int, desc: str, opts: MetricOptions) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not opts.progress or opts.rank != 0, leave=False)


def _real_batches(dataset: ImageDataset, opts: MetricOptions) -> Iterator[torch.Tensor]:
    share = rank_share(len(dataset), opts)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, share), batch_size=opts.batch_size)
    with _progress(len(share), "pfd real", opts) as bar:
        for images, _ in loader:
            bar.update(len(images))
            yield images.to(opts.device)


def _generated_batches(G: Generator, dataset: ImageDataset, num: int, opts: MetricOptions) -> Iterator[torch.Tensor]:
    """This rank's share of `num` generated uint8 images, made as the FID metrics make them (image i seeded by
    its index; labels drawn from the dataset's)."""
    with _progress(sum(size for _, _, size in generator_share(num, opts)), "pfd generated", opts) as bar:
        for _, images in generator_batches(G, dataset if G.c_dim > 0 else None, num, opts):
            bar.update(len(images))
            yield images


@register_metric(counted=True)
def pfd5k_full(opts: MetricOptions) -> dict[str, float]:
    """Pixel Fréchet distance (a FID stand-in, not FID): full dataset vs. 5000 generated images."""
    if opts.dataset is None:
        raise ValueError("pfd5k_full needs a dataset")
    num_gen = 5000 if opts.num_gen is None else opts.num_gen
    if num_gen < 2:
        raise ValueError(f"pfd5k_full needs at least 2 generated images, got num_gen={num_gen}")
    dataset = ImageDataset(opts.dataset, xflip=opts.mirror)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    if G.c_dim > 0 and dataset.label_dim != G.c_dim:
        raise ValueError(f"the generator takes {G.c_dim}-dim labels but the dataset has {dataset.label_dim}")
    if G.img_channels != dataset.num_channels:
        raise ValueError(f"the generator makes {G.img_channels}-channel images but the dataset has {dataset.num_channels}")
    try:
        mu_real, sigma_real = _mean_cov(_real_batches(dataset, opts), dataset.num_channels, opts)
        mu_gen, sigma_gen = _mean_cov(_generated_batches(G, dataset, num_gen, opts), G.img_channels, opts)
    finally:
        dataset.close()
    return {counted_name("pfd5k_full", opts.num_gen): frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)}

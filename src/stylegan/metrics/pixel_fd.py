"""`pfd5k_full`: a cheap pixel-statistics stand-in for FID, for CPU demos and smoke tests. It is NOT FID.

It applies the FID formula to 8x8 area-downsampled pixels (scaled to [0, 1]) instead of Inception
features: the Fréchet distance between Gaussian fits of all real images (x-flipped too with `mirror`) and
of 5000 generated ones (made as the FID metrics make them). It sees only coarse colour and layout, and its values are not comparable to FID.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.dataset import ImageDataset
from .fid import frechet_distance, generated_batches
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
        if images.shape[1] != channels:
            raise ValueError(f"the generated images have {images.shape[1]} channel(s) but the dataset has {channels}")
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


@register_metric(counted=True, needs_data=True)
def pfd5k_full(opts: MetricOptions) -> dict[str, float]:
    """Pixel Fréchet distance (a FID stand-in, not FID): full dataset vs. 5000 generated images (from G, or the
    first 5000 files of `opts.images`)."""
    if opts.dataset is None:
        raise ValueError("pfd5k_full needs a dataset")
    num_gen = 5000 if opts.num_gen is None else opts.num_gen
    if num_gen < 2:
        raise ValueError(f"pfd5k_full needs at least 2 generated images, got num_gen={num_gen}")
    dataset = ImageDataset(opts.dataset, xflip=opts.mirror)
    try:
        if opts.G is not None and opts.G.img_channels != dataset.num_channels:
            raise ValueError(f"the generator makes {opts.G.img_channels}-channel images but the dataset has {dataset.num_channels}")
        mu_real, sigma_real = _mean_cov(_real_batches(dataset, opts), dataset.num_channels, opts)
        with generated_batches(opts, num_gen, "pfd5k_full") as (batches, local):
            with _progress(local, "pfd generated", opts) as bar:
                mu_gen, sigma_gen = _mean_cov(_counted(batches, bar), dataset.num_channels, opts)
    finally:
        dataset.close()
    return {counted_name("pfd5k_full", opts.num_gen): frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)}


def _counted(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], bar: tqdm) -> Iterator[torch.Tensor]:
    for _, images in batches:
        bar.update(len(images))
        yield images

"""The metric registry: named metrics computed from `MetricOptions`, and their `metric-<name>.jsonl` records.

A metric is a function `MetricOptions -> {result name: value}` registered with `@register_metric` under its
function name. With `num_gpus > 1` every rank calls it inside an initialised `torch.distributed` process
group; each rank does its share of the work (`rank_share`) and the statistics are summed across ranks
(`all_reduce_sum`), so every rank returns the same numbers.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..io.runs import append_line
from ..models.common import Generator


@dataclass
class MetricOptions:
    """What a metric needs: the generator, the real data, and how to split the work."""

    G: Generator | None  # generator (G_ema); None when `images` stands in for it
    dataset: str | None  # dataset zip or folder (stylegan.data.dataset.ImageDataset); None for G-only metrics
    mirror: bool = False  # add x-flipped copies of the real images
    num_gen: int | None = None  # overrides the metric's number of generated images
    device: torch.device | str = "cpu"  # where G and the feature networks run
    batch_size: int = 64  # images per forward pass
    seed: int = 0  # seed of the latents and labels
    rank: int = 0  # this process (the work is split across num_gpus processes)
    num_gpus: int = 1  # processes
    progress: bool = False  # progress bars
    detector: str | None = None  # feature-network weights file; None: the default source (metrics.detectors)
    images: str | None = None  # a zip or folder of generated images to evaluate instead of G (FID, KID)
    cache: bool = True  # keep real-data feature statistics on disk (metrics.detectors.cache_dir()/gan-metrics)
    uniform_classes: bool = False  # a conditional G's classes drawn uniformly (StyleGAN-XL's metrics), not from the dataset's labels


@dataclass
class MetricResult:
    """One evaluation of a metric, as recorded in `metric-<name>.jsonl`."""

    metric: str
    results: dict[str, float]
    total_time: float
    total_time_str: str
    num_gpus: int
    snapshot_pkl: str | None = None
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """The record as one JSON line in the official key order."""
        return json.dumps({
            "results": self.results, "metric": self.metric, "total_time": self.total_time,
            "total_time_str": self.total_time_str, "num_gpus": self.num_gpus,
            "snapshot_pkl": self.snapshot_pkl, "timestamp": self.timestamp,
        })


MetricFn = Callable[[MetricOptions], dict[str, float]]
METRICS: dict[str, MetricFn] = {}
COUNTED: set[str] = set()  # metrics whose name states the generated-image count
NEEDS_GENERATOR: set[str] = set()  # metrics that drive G itself: no folder of images can stand in for it
NEEDS_DATA: set[str] = set()  # metrics that compare with the real images
METRIC_MODULES = ("pixel_fd", "fid", "perceptual", "equivariance")


def register_metric(fn: MetricFn | None = None, *, counted: bool = False, needs_generator: bool = False,
                    needs_data: bool = False) -> Callable[[MetricFn], MetricFn] | MetricFn:
    """Decorator: register `fn` under its name. `@register_metric(counted=True)` marks a name that states the
    generated-image count ("fid50k_full"): with `num_gen` set, the metric is reported as `counted_name(...)`.
    `needs_generator` / `needs_data`: what callers must provide (`stylegan metrics` checks before any work)."""
    def register(f: MetricFn) -> MetricFn:
        METRICS[f.__name__] = f
        for flag, names in ((counted, COUNTED), (needs_generator, NEEDS_GENERATOR), (needs_data, NEEDS_DATA)):
            if flag:
                names.add(f.__name__)
        return f
    return register(fn) if fn is not None else register



def counted_name(name: str, num_gen: int | None) -> str:
    """The name a counted metric is reported under: the count after the leading letters becomes `num_gen`
    ("fid50k_full", 1000 -> "fid1k_full"; 64 -> "fid64_full"; "pr50k3_full", 2000 -> "pr2k3_full"); a name
    that states no count gets it appended ("ppl2_wend", 1000 -> "ppl2_wend_1k")."""
    if num_gen is None:
        return name
    tag = f"{num_gen // 1000}k" if num_gen % 1000 == 0 else str(num_gen)
    counted, found = re.subn(r"^([a-z]+)\d+k", lambda m: m.group(1) + tag, name, count=1)
    return counted if found else f"{name}_{tag}"


def _ensure_registered() -> None:
    # The metric modules import this one, so they are imported here, on first use, not at import time.
    for module in METRIC_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def is_valid_metric(name: str) -> bool:
    """Whether `name` is a registered metric."""
    _ensure_registered()
    return name in METRICS


def list_valid_metrics() -> list[str]:
    """Names of all registered metrics, sorted."""
    _ensure_registered()
    return sorted(METRICS)


def compute(name: str, opts: MetricOptions) -> MetricResult:
    """Evaluate metric `name` and time it; ValueError for an unknown name."""
    if not is_valid_metric(name):
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(list_valid_metrics())}")
    start = time.time()
    results = {key: float(value) for key, value in METRICS[name](opts).items()}
    total = time.time() - start
    reported = counted_name(name, opts.num_gen) if name in COUNTED else name
    return MetricResult(metric=reported, results=results, total_time=total, total_time_str=format_time(total),
                        num_gpus=opts.num_gpus)


def report_metric(result: MetricResult, run_dir: str | os.PathLike | None, snapshot_pkl: str | None = None) -> None:
    """Append `result` to `run_dir/metric-<name>.jsonl` (nothing without a run_dir; call it on rank 0 only).

    `snapshot_pkl`, when given, replaces the result's and is stored relative to `run_dir`, as the official code does.
    """
    if run_dir is None:
        return
    if snapshot_pkl is not None:
        result = replace(result, snapshot_pkl=os.path.relpath(snapshot_pkl, run_dir))
    path = Path(run_dir) / f"metric-{result.metric}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    append_line(path, result.to_json())


def format_time(seconds: float) -> str:
    """Official duration style: "12s", "3m 04s", "1h 02m 03s", "2d 03h 04m"."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 60 * 60:
        return f"{s // 60}m {s % 60:02}s"
    if s < 24 * 60 * 60:
        return f"{s // 3600}h {s // 60 % 60:02}m {s % 60:02}s"
    return f"{s // 86400}d {s // 3600 % 24:02}h {s // 60 % 60:02}m"


# ----------------------------------------------------------------------------- multi-GPU helpers for metrics

def rank_share(n: int, opts: MetricOptions) -> range:
    """The indices of `n` work items this rank handles (every `num_gpus`-th, starting at `rank`)."""
    return range(opts.rank, n, opts.num_gpus)


def all_reduce_sum(x: torch.Tensor, opts: MetricOptions) -> torch.Tensor:
    """`x` summed over all ranks (`x` itself on a single GPU); `x` must live on `opts.device`."""
    if opts.num_gpus > 1:
        x = x.clone()
        torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.SUM)
    return x

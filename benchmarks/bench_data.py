#!/usr/bin/env python
"""Training-data throughput: images/s from a dataset zip through ImageDataset, InfiniteSampler and DataLoader.

For each resolution (default 32 and 256) a synthetic RGB dataset is written with the converter
(`stylegan dataset` from a random N x H x W x 3 IDX file: uncompressed PNGs in the official zip layout) in
a temporary folder. Batches are then drawn as a training loop draws them (InfiniteSampler, x-flip on,
labels off) for each worker count; warm-up batches are excluded and the rate is taken over at least
`--min-time` seconds. The zip is in the OS page cache, so this measures decoding, not the disk.

    .venv/bin/python benchmarks/bench_data.py
    .venv/bin/python benchmarks/bench_data.py --resolutions 32 256 512 --workers 0 1 2 4 --batch 32

Timings on a shared machine are noisy: compare variants run back to back and repeat.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stylegan.data import ConvertConfig, ImageDataset, InfiniteSampler, convert_dataset  # noqa: E402

# Images per synthetic dataset, by resolution: enough that batches keep changing, small enough to build fast.
DEFAULT_COUNT = {32: 4096, 64: 2048, 128: 1024, 256: 512, 512: 128, 1024: 64}


def make_zip(folder: Path, res: int, count: int) -> Path:
    images = np.random.RandomState(res).randint(0, 256, (count, res, res, 3), dtype=np.uint8)
    idx = folder / f"bench{res}-images-idx3-ubyte.gz"
    header = struct.pack(">BBBB", 0, 0, 8, 4) + struct.pack(">4I", *images.shape)
    idx.write_bytes(gzip.compress(header + images.tobytes(), compresslevel=1))
    dest = folder / f"bench{res}.zip"
    convert_dataset(ConvertConfig(source=str(idx), dest=dest, labels="none"), log=lambda _: None)
    idx.unlink()
    return dest


def measure(path: Path, workers: int, batch: int, warmup: int, min_time: float) -> dict:
    ds = ImageDataset(path, xflip=True, use_labels=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=InfiniteSampler(ds, seed=0),
                                         num_workers=workers, prefetch_factor=2 if workers else None)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time or n < 4 * batch:
        img, _ = next(it)
        n += len(img)
    elapsed = time.perf_counter() - start
    del it
    return dict(resolution=ds.resolution, workers=workers, batch=batch, images=n, seconds=round(elapsed, 3),
                img_per_s=round(n / elapsed, 1), mb_per_s=round(n * img.shape[1:].numel() / elapsed / 1e6, 1),
                zip_mb=round(path.stat().st_size / 1e6, 1), dataset_images=len(ds) // 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 256], help="default 32 256")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts (default 0 2)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--warmup", type=int, default=3, help="batches excluded from timing (default 3)")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds timed per row (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the main process, which collates batches when there are no workers "
                        "(default 1, as in each worker; more threads on a busy machine only add contention)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} main-process thread(s), batch {args.batch}, RGB, x-flip on")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.resolutions:
            count = DEFAULT_COUNT.get(res, 256)
            t0 = time.perf_counter()
            path = make_zip(Path(tmp), res, count)
            print(f"  built {path.name}: {count} images, {path.stat().st_size / 1e6:.1f} MB in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            for workers in args.workers:
                rows.append(measure(path, workers, args.batch, args.warmup, args.min_time))
    print(f"\n{'resolution':>10} {'workers':>7} {'images/s':>10} {'MB/s':>8}")
    for r in rows:
        print(f"{r['resolution']:>8}^2 {r['workers']:>7} {r['img_per_s']:>10.1f} {r['mb_per_s']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

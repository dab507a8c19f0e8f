#!/usr/bin/env python
"""Training speed (sec/kimg) of the full training loop: every phase with lazy R1 / path-length
regularisation, style mixing, G_ema, augmentation where the preset has it, data loading — as
`stylegan train` runs it, on random-pixel datasets so that nothing needs downloading.

    .venv/bin/python benchmarks/bench_training.py                       # demo and paper256 with 64 channels
    .venv/bin/python benchmarks/bench_training.py --configs demo --kimg 2 --json out/bench-training.json

sec/kimg is the median over the ticks after the first (tick 0 is a single minibatch and includes
warm-up). The bare G+D step (non-saturating loss only), which NVIDIA's code runs at 33 img/s on this
machine class at 32x32 / 64 channels, is measured by bench_stylegan2.py (config `a`, `step`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

# name -> (resolution, channels, CLI flags of `stylegan train`)
CONFIGS = {
    "demo": (32, 1, {"cfg": "demo"}),
    "paper256-c64": (256, 3, {"cfg": "paper256", "cmax": 64, "batch": 16, "batch_gpu": 16, "mbstd_group": 4}),
}


def random_dataset(folder: Path, res: int, channels: int, n: int = 256) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(n):
        arr = rnd.randint(0, 256, size=(res, res) if channels == 1 else (res, res, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i:05d}.png")
    return folder


def measure(name: str, kimg: float, tick: float, threads: int) -> dict:
    import torch

    from stylegan.data.dataset import ImageDataset
    from stylegan.training.distributed import DistEnv
    from stylegan.training.loop import Trainer
    from stylegan.training.options import resolve

    torch.set_num_threads(threads)
    res, channels, flags = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        data = random_dataset(Path(tmp) / "data", res, channels)
        opts = resolve({"data": str(data), "workers": 0, **flags}, ImageDataset(data).describe())
        opts = dataclasses.replace(opts, kimg=kimg, tick=tick, snap=10**6)
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        start = time.time()
        Trainer(opts, run_dir, DistEnv(0, 1, torch.device("cpu")), progress=False, log=lambda s: None).run()
        wall = time.time() - start
        ticks = [json.loads(ln) for ln in (run_dir / "stats.jsonl").read_text().splitlines()][1:]
    sec_per_kimg = statistics.median(t["Timing/sec_per_kimg"] for t in ticks)
    return {
        "config": name, "resolution": res, "batch": opts.batch, "batch_gpu": opts.batch_gpu, "aug": opts.aug,
        "channel_max": opts.G.config.synthesis.channel_max, "sec_per_kimg": round(sec_per_kimg, 2),
        "img_per_s": round(1000 / sec_per_kimg, 1), "ticks": len(ticks), "wall_s": round(wall, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), "threads": threads,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}")
    ap.add_argument("--kimg", type=float, default=None, help="images to train per config (default: 2 for demo, 0.4 for paper256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for name in args.configs.split(","):
        kimg = args.kimg or (2.0 if name == "demo" else 0.4)
        rows.append(measure(name, kimg, tick=kimg / 4, threads=args.threads))
        r = rows[-1]
        print(f"{r['config']:<14} {r['resolution']:>4}px  batch {r['batch']:>3}  aug {r['aug']:<6}  {r['sec_per_kimg']:>8.2f} sec/kimg"
              f"  {r['img_per_s']:>7.1f} img/s  peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""A small-scale StyleGAN2 Table 1: train configs A-F on Fashion-MNIST 32x32 on the CPU for the same budget
and measure FID, a pixel-space PPL stand-in, the droplet statistic and sec/kimg.

    .venv/bin/python benchmarks/repro_table1.py --configs paper-a,paper-b,paper-d,paper-f --kimg 40 --out out/table1

Every config gets the same overrides (network size, minibatch, learning rate, R1 gamma, G_ema half-life,
growing schedule: a short budget needs a short half-life and fast growing),
so what differs between two rows is exactly the paper's step; F doubles the channels of A-E. Writes
OUT/table1.json and OUT/table1.md. The FID is computed from --fid-num generated images against as many
Fashion-MNIST test images (small samples bias FID upwards: compare rows, not papers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from stylegan.analysis.droplets import droplet_stats
from stylegan.analysis.ppl import ppl_samples
from stylegan.cli.common import resolve_data
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.io.cache import cache_dir
from stylegan.io.load import load_network
from stylegan.io.runs import latest_snapshot
from stylegan.metrics.registry import MetricOptions, compute
from stylegan.training.distributed import DistEnv


def train(cfg: str, args: argparse.Namespace, outdir: Path) -> Path:
    cbase, cmax = (args.cbase * 2, args.cmax * 2) if cfg == "paper-f" else (args.cbase, args.cmax)
    cmd = [sys.executable, "-m", "stylegan", "train", "--cfg", cfg, "--data", "builtin:fashion-mnist", "--kimg", str(args.kimg),
           "--batch", str(args.batch), "--cbase", str(cbase), "--cmax", str(cmax), "--map-depth", str(args.map_depth),
           "--gamma", str(args.gamma), "--ema-kimg", str(args.ema_kimg), "--glr", str(args.lr), "--dlr", str(args.lr), "--grow-kimg", args.grow_kimg,
           "--tick", str(args.tick), "--snap", "1000", "--workers", "1", "--seed", str(args.seed), "--no-progress",
           "--desc", "table1", "--outdir", str(outdir)]
    before = set(outdir.glob("*")) if outdir.exists() else set()
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    (run,) = set(outdir.glob("*")) - before
    return run


def measure(cfg: str, run: Path, args: argparse.Namespace, fid_ref: Path) -> dict:
    snap = latest_snapshot(run)
    G = load_network(snap).G_ema.eval()
    lines = [json.loads(ln) for ln in (run / "stats.jsonl").read_text().splitlines() if ln.strip()]
    fid = compute("fid50k_full", MetricOptions(G=G, dataset=str(fid_ref), num_gen=args.fid_num, seed=args.seed, progress=False))
    ppl, _, _ = ppl_samples(G, num_samples=args.ppl_num, seed=args.seed, distance="pixel-mse")
    drops, _ = droplet_stats(G, num_samples=64, seed=args.seed)
    worst = max(drops.layers, key=lambda s: s.peak_to_mean)
    return {
        "config": cfg, "run": str(run), "snapshot": snap.name, "kimg": lines[-1]["kimg"],
        "fid": fid.results[next(iter(fid.results))], "fid_name": next(iter(fid.results)),
        "ppl_pixel_mse_filtered_mean": ppl.filtered_mean,
        "droplet_peak_to_mean_max_layer": worst.peak_to_mean, "droplet_layer": worst.name,
        "droplet_peak_to_mean_mean": statistics.fmean(s.peak_to_mean for s in drops.layers),
        "sec_per_kimg_median": statistics.median(ln["Timing/sec_per_kimg"] for ln in lines[1:]),
        "train_minutes": lines[-1]["Timing/total_sec"] / 60,
        "final_G_loss": lines[-1].get("Loss/G/loss"), "final_D_loss": lines[-1].get("Loss/D/loss"),
    }


def table(rows: list[dict], args: argparse.Namespace) -> str:
    out = [f"Fashion-MNIST 32x32, {args.kimg:g} kimg per config, batch {args.batch}, lr {args.lr:g}, gamma {args.gamma:g}, "
           f"G_ema half-life {args.ema_kimg:g} kimg, channel base/max {args.cbase}/{args.cmax} (F: doubled), "
           f"growing {args.grow_kimg} kimg per level/fade, "
           f"{torch.get_num_threads()} CPU threads.", "",
           f"| config | FID ({rows[0]['fid_name']}, {args.fid_num} vs {args.fid_num}) | PPL stand-in (pixel MSE / eps², filtered mean) | "
           "droplet peak/mean (mean over layers / worst layer) | sec/kimg (median) | train min |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['config']} | {r['fid']:.1f} | {r['ppl_pixel_mse_filtered_mean']:.4g} | "
                   f"{r['droplet_peak_to_mean_mean']:.2f} / {r['droplet_peak_to_mean_max_layer']:.2f} ({r['droplet_layer']}) | "
                   f"{r['sec_per_kimg_median']:.1f} | {r['train_minutes']:.1f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="paper-a,paper-b,paper-d,paper-f")
    p.add_argument("--kimg", type=float, default=40)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--cbase", type=int, default=1024)
    p.add_argument("--cmax", type=int, default=64)
    p.add_argument("--map-depth", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.0025)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--ema-kimg", type=float, default=2.0)
    p.add_argument("--grow-kimg", default="5,5")
    p.add_argument("--tick", type=float, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fid-num", type=int, default=1000)
    p.add_argument("--ppl-num", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("out/table1"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    resolve_data("builtin:fashion-mnist", DistEnv(0, 1, torch.device("cpu")))
    fid_ref = cache_dir() / "datasets" / f"fashion-mnist-test-{args.fid_num}.zip"
    if not fid_ref.exists():
        convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=fid_ref, max_images=args.fid_num), log=lambda s: None)
    rows = []
    for cfg in args.configs.split(","):
        start = time.time()
        run = train(cfg, args, args.out / "runs")
        rows.append(measure(cfg, run, args, fid_ref))
        print(json.dumps(rows[-1]), f"({(time.time() - start) / 60:.1f} min)", flush=True)
        (args.out / "table1.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / "table1.md").write_text(table(rows, args))
    print(table(rows, args))


if __name__ == "__main__":
    main()

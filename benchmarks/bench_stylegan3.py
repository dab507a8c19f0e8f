#!/usr/bin/env python
"""CPU throughput of the StyleGAN3 generator (configs T and R) and of one G training step.

At 64² (z = w = 512, channel_base 16384, channel_max 256, 2 mapping layers; R doubles the channel budget as
`stylegan3_config` does), batch 8 by default:

* ``infer``: generator inference in images/s: ``G(z)`` in eval mode under ``torch.no_grad()``;
* ``step``: seconds for one G step: G forward, a StyleGAN2 resnet discriminator of the same size,
  the non-saturating loss ``softplus(-D(G(z))).mean()`` and its backward pass into G (D does not require
  gradients, as in the official G phase); no regularisation, no optimizer.

Each measurement runs in a fresh subprocess (its own peak RSS); warm-up excluded, median over the timed
iterations (and over the runs with ``--repeat``). ``--compare`` runs the reference op paths
(``stylegan.ops.set_fast_paths(False)``) and the fast paths back to back.

    .venv/bin/python benchmarks/bench_stylegan3.py --threads 2
    .venv/bin/python benchmarks/bench_stylegan3.py --configs t --modes infer --compare --repeat 3 --json out/sg3.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "src", ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_stylegan2 import _cpu_busy_s, _fmt_cores, _own_cpu_s, _timed, wait_until_quiet  # noqa: E402

# Config name -> stylegan3_config name and the official code's numbers on a 2-core machine
# (inference img/s, seconds per step) at batch 8.
CONFIGS = {
    "t": dict(cfg="stylegan3-t", official=(0.3, 184.0)),
    "r": dict(cfg="stylegan3-r", official=(None, None)),
}
RES, ZW, MAPPING_LAYERS, CHANNEL_BASE, CHANNEL_MAX = 64, 512, 2, 16384, 256


def build(name: str, seed: int = 0):
    import torch

    from stylegan.models.stylegan2 import Discriminator, DiscriminatorConfig, MappingConfig
    from stylegan.models.stylegan3 import Generator, stylegan3_config

    gcfg = stylegan3_config(CONFIGS[name]["cfg"], RES, z_dim=ZW, w_dim=ZW, channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX)
    gcfg.mapping = MappingConfig(num_layers=MAPPING_LAYERS)
    dcfg = DiscriminatorConfig(img_resolution=RES, channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX)
    torch.manual_seed(seed)
    return Generator(gcfg), Discriminator(dcfg)


def measure(name: str, mode: str, batch: int, warmup: int, iters: int, min_time: float, reference: bool) -> dict:
    import torch
    import torch.nn.functional as F

    import stylegan.ops as ops

    if reference:
        ops.set_fast_paths(False)
    G, D = build(name)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn([batch, G.z_dim], generator=gen)
    if mode == "infer":
        G.eval().requires_grad_(False)

        def fn():
            with torch.no_grad():
                G(z)

    elif mode == "step":
        G.train().requires_grad_(True)
        D.train().requires_grad_(False)

        def fn():
            G.zero_grad(set_to_none=True)
            F.softplus(-D(G(torch.randn([batch, G.z_dim], generator=gen)))).mean().backward()

    else:
        raise ValueError(mode)
    busy0, own0, wall0 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    times = _timed(fn, warmup, iters, min_time)
    busy1, own1, wall1 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    others = None if busy0 is None or busy1 is None else max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    med = statistics.median(times)
    return dict(config=name, mode=mode, batch=batch, fast_paths=not reference, threads=torch.get_num_threads(),
                iters=len(times), median_s=med, best_s=min(times), img_per_s=batch / med,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, other_cores=others)


def _run_worker(args, name: str, mode: str, reference: bool) -> dict:
    if args.in_process:
        return measure(name, mode, args.batch, args.warmup, args.iters, args.min_time, reference)
    cmd = [sys.executable, __file__, "--_worker", f"{name}:{mode}", "--batch", str(args.batch), "--warmup", str(args.warmup),
           "--iters", str(args.iters), "--min-time", str(args.min_time)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if reference:
        cmd.append("--reference")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="t,r", help="comma-separated subset of: " + ", ".join(CONFIGS))
    p.add_argument("--modes", default="infer,step", help="comma-separated subset of: infer, step")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="minimum number of timed iterations")
    p.add_argument("--min-time", type=float, default=0.0, help="keep timing (up to 10x --iters) for at least this many s")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reference", action="store_true", help="run the reference op paths")
    group.add_argument("--compare", action="store_true", help="run reference and fast paths back to back")
    p.add_argument("--repeat", type=int, default=1, help="run every measurement this many times (variants alternate)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other processes to use < 0.3 cores (Linux)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--in-process", action="store_true", help="do not spawn a subprocess per measurement (RSS then accumulates)")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args._worker:
        name, mode = args._worker.split(":")
        print("RESULT " + json.dumps(measure(name, mode, args.batch, args.warmup, args.iters, args.min_time, args.reference)))
        return 0

    variants = [True, False] if args.compare else [args.reference]
    rows = []
    for name in args.configs.split(","):
        for mode in args.modes.split(","):
            runs: dict[bool, list[dict]] = {v: [] for v in variants}
            for _ in range(args.repeat):
                for reference in variants:
                    if args.wait_quiet > 0:
                        wait_until_quiet(args.wait_quiet)
                    row = _run_worker(args, name, mode, reference)
                    runs[reference].append(row)
                    print(f"  {name}/{mode}/{'reference' if reference else 'fast'}: {row['median_s']:.2f} s/iter "
                          f"(other processes: {_fmt_cores(row.get('other_cores'))} cores)", file=sys.stderr, flush=True)
            for reference in variants:
                rs = runs[reference]
                row = dict(rs[0], runs=len(rs), run_median_s=[r["median_s"] for r in rs])
                row["median_s"] = statistics.median(r["median_s"] for r in rs)
                row["best_s"] = min(r["best_s"] for r in rs)
                row["img_per_s"] = row["batch"] / row["median_s"]
                row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rs)
                official = CONFIGS[name]["official"][0 if mode == "infer" else 1]
                row["official"] = official
                if official:
                    row["speedup_vs_official"] = row["img_per_s"] / official if mode == "infer" else official / row["median_s"]
                rows.append(row)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {rows[0]['threads'] if rows else '?'}, batch {args.batch}, {args.repeat} run(s) per row")
    hdr = f"{'config':<7}{'mode':<7}{'ops':<6}{'img/s':>8}{'s/iter':>9}{'best s':>9}{'x offic.':>10}{'peak RSS MiB':>14}{'others':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        x = f"{r['speedup_vs_official']:>10.2f}" if r.get("speedup_vs_official") else f"{'':>10}"
        print(f"{r['config']:<7}{r['mode']:<7}{'fast' if r['fast_paths'] else 'ref':<6}{r['img_per_s']:>8.2f}{r['median_s']:>9.2f}"
              f"{r['best_s']:>9.2f}{x}{r['peak_rss_mib']:>14.0f}{_fmt_cores(r.get('other_cores')):>8}")
    print("s/iter: median over iterations (warm-up excluded; median of runs with --repeat); x offic.: speed-up over the "
          "official code's numbers (T only); others: CPU cores other processes kept busy (worst run)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        meta = dict(torch=torch.__version__, cpus=os.cpu_count(), platform=platform.platform(), args=vars(args))
        Path(args.json).write_text(json.dumps(dict(meta=meta, results=rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""CPU throughput of the StyleGAN2 generator and of one G+D training step.

Measures, at a fixed batch size (default 8):

* ``infer``: generator inference in images/s: ``G(z, noise_mode='const')`` in eval mode under
  ``torch.no_grad()`` (how a G_ema copy is used to make images);
* ``step``: one G+D training step in images/s: the non-saturating logistic loss
  ``softplus(-D(G(z)))`` for G and ``softplus(D(G(z))) + softplus(-D(real))`` for D, no
  regularisation, Adam (lr 0.002, betas (0, 0.99)), both backward passes and optimizer steps, G and D
  in train mode. As in the official training loop only the network being trained requires gradients
  during its phase, and the two D loss terms are backpropagated one after the other.

Each measurement runs in a fresh subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; warm-up iterations are excluded and the
median over the timed iterations is reported (and the fastest iteration). The "others" column says how
many CPU cores other processes kept busy meanwhile (Linux): on a shared 2-core machine anything well
above 0 slows the measurement down badly (PyTorch's worker threads wait for each other).

    .venv/bin/python benchmarks/bench_stylegan2.py                      # both configs, fast op paths
    .venv/bin/python benchmarks/bench_stylegan2.py --reference          # the reference op paths
    .venv/bin/python benchmarks/bench_stylegan2.py --compare --repeat 3 --wait-quiet 60 --json out/bench.json

``--compare`` runs reference and fast paths back to back (alternating with ``--repeat``), which is the
way to compare them on a noisy machine.
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
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

# Config name -> (resolution, z = w dim, mapping layers, channel_base, channel_max, official img/s on a
# 2-core machine: inference, training step).
CONFIGS = {
    "a": dict(res=32, zw=64, mapping_layers=2, channel_base=2048, channel_max=64, official=(188.0, 33.0)),
    "b": dict(res=64, zw=512, mapping_layers=2, channel_base=16384, channel_max=256, official=(6.8, 0.8)),
}
FUSED_CHOICES = {"default": None, "true": True, "false": False, "inference_only": "inference_only"}


def build(name: str, fused: str, seed: int = 0):
    import torch

    from stylegan.models.stylegan2 import (
        Discriminator,
        DiscriminatorConfig,
        Generator,
        GeneratorConfig,
        MappingConfig,
        SynthesisConfig,
    )

    c = CONFIGS[name]
    synthesis = SynthesisConfig(channel_base=c["channel_base"], channel_max=c["channel_max"])
    if FUSED_CHOICES[fused] is not None:
        synthesis.fused_modconv_default = FUSED_CHOICES[fused]
    gcfg = GeneratorConfig(
        z_dim=c["zw"], w_dim=c["zw"], img_resolution=c["res"], mapping=MappingConfig(num_layers=c["mapping_layers"]),
        synthesis=synthesis,
    )
    dcfg = DiscriminatorConfig(img_resolution=c["res"], channel_base=c["channel_base"], channel_max=c["channel_max"])
    torch.manual_seed(seed)
    return Generator(gcfg), Discriminator(dcfg)


def _cpu_busy_s() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wait_until_quiet(max_wait: float, threshold: float = 0.3, sample: float = 1.0) -> float | None:
    """Wait (up to max_wait s) until other processes use less than `threshold` cores; returns their use."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = _cpu_busy_s(), time.monotonic()
        time.sleep(sample)
        b1, t1 = _cpu_busy_s(), time.monotonic()
        if b0 is None or b1 is None:
            return None
        others = (b1 - b0) / (t1 - t0)
        if others < threshold or time.monotonic() >= deadline:
            return others


def _timed(fn, warmup: int, iters: int, min_time: float) -> list[float]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    t_end = time.perf_counter() + min_time
    while len(times) < iters or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10 * iters:
            break
    return times


def measure(name: str, mode: str, batch: int, warmup: int, iters: int, min_time: float, fused: str, reference: bool) -> dict:
    """Run one measurement in this process; returns a result row."""
    import torch
    import torch.nn.functional as F

    import stylegan.ops as ops

    if reference:
        ops.set_fast_paths(False)
    G, D = build(name, fused)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn([batch, G.z_dim], generator=gen)

    if mode == "infer":
        G.eval().requires_grad_(False)

        def fn():
            with torch.no_grad():
                G(z, noise_mode="const")

    elif mode == "step":
        G.train().requires_grad_(False)
        D.train().requires_grad_(False)
        real = torch.randn([batch, G.img_channels, G.img_resolution, G.img_resolution], generator=gen).clamp(-1, 1)
        opt_g = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8)
        opt_d = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8)

        def fn():
            zg = torch.randn([batch, G.z_dim], generator=gen)
            # G phase: only G requires gradients.
            opt_g.zero_grad(set_to_none=True)
            G.requires_grad_(True)
            loss_g = F.softplus(-D(G(zg))).mean()
            loss_g.backward()
            G.requires_grad_(False)
            opt_g.step()
            # D phase: only D requires gradients; fake images carry no graph into G.
            opt_d.zero_grad(set_to_none=True)
            D.requires_grad_(True)
            fake = G(torch.randn([batch, G.z_dim], generator=gen))
            F.softplus(D(fake)).mean().backward()
            F.softplus(-D(real)).mean().backward()
            D.requires_grad_(False)
            opt_d.step()

    else:
        raise ValueError(mode)

    load0 = os.getloadavg()[0]
    busy0, own0, wall0 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    times = _timed(fn, warmup, iters, min_time)
    busy1, own1, wall1 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    # Cores that other processes kept busy, on average, while this measurement ran.
    others = None if busy0 is None or busy1 is None else max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    med = statistics.median(times)
    official = CONFIGS[name]["official"][0 if mode == "infer" else 1]
    return dict(
        config=name, mode=mode, batch=batch, fused_modconv=fused, fast_paths=not reference,
        thp_alloc=os.environ.get("THP_MEM_ALLOC_ENABLE", "") == "1",
        threads=torch.get_num_threads(), iters=len(times),
        median_s=med, best_s=min(times), img_per_s=batch / med, best_img_per_s=batch / min(times),
        official_img_per_s=official, speedup_vs_official=batch / med / official,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        loadavg_max=max(load0, os.getloadavg()[0]),
        other_cores=others,
    )


def _run_worker(args, name: str, mode: str, reference: bool) -> dict:
    if args.in_process:
        return measure(name, mode, args.batch, args.warmup, args.iters, args.min_time, args.fused_modconv, reference)
    cmd = [sys.executable, __file__, "--_worker", f"{name}:{mode}", "--batch", str(args.batch),
           "--warmup", str(args.warmup), "--iters", str(args.iters), "--min-time", str(args.min_time),
           "--fused-modconv", args.fused_modconv]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if reference:
        cmd.append("--reference")
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1") if args.thp else None
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def _fmt_cores(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f}"


def _aggregate(runs: list[dict]) -> dict:
    """One row from repeated runs of one measurement: median of the runs' medians, best of their bests."""
    row = dict(runs[0])
    row["runs"] = len(runs)
    row["run_img_per_s"] = [r["img_per_s"] for r in runs]
    row["img_per_s"] = statistics.median(r["img_per_s"] for r in runs)
    row["median_s"] = row["batch"] / row["img_per_s"]
    row["best_img_per_s"] = max(r["best_img_per_s"] for r in runs)
    row["best_s"] = row["batch"] / row["best_img_per_s"]
    row["iters"] = sum(r["iters"] for r in runs)
    row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    row["speedup_vs_official"] = row["img_per_s"] / row["official_img_per_s"]
    row["loadavg_max"] = max(r["loadavg_max"] for r in runs)
    others = [r["other_cores"] for r in runs if r.get("other_cores") is not None]
    row["other_cores"] = max(others) if others else None
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="a,b", help="comma-separated subset of: " + ", ".join(CONFIGS))
    p.add_argument("--modes", default="infer,step", help="comma-separated subset of: infer, step")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5, help="minimum number of timed iterations")
    p.add_argument("--min-time", type=float, default=3.0, help="keep timing (up to 10x --iters) for at least this many s")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--fused-modconv", choices=list(FUSED_CHOICES), default="default",
                   help="SynthesisConfig.fused_modconv_default for G (default: the config's own default)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reference", action="store_true", help="run the reference op paths (stylegan.ops.set_fast_paths(False))")
    group.add_argument("--compare", action="store_true", help="run reference and fast paths back to back, report the speed-up")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every measurement this many times (alternating variants with --compare); "
                        "report the median of the runs' medians")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other processes to use < 0.3 cores (Linux)")
    p.add_argument("--thp", action="store_true",
                   help="run the measurements with THP_MEM_ALLOC_ENABLE=1 (PyTorch then backs large CPU tensors with "
                        "transparent huge pages, which makes fresh allocations much cheaper; needs a subprocess)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--in-process", action="store_true", help="do not spawn a subprocess per measurement (RSS then accumulates)")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    if args._worker:
        name, mode = args._worker.split(":")
        row = measure(name, mode, args.batch, args.warmup, args.iters, args.min_time, args.fused_modconv, args.reference)
        print("RESULT " + json.dumps(row))
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
                    label = "reference" if reference else "fast"
                    print(f"  {name}/{mode}/{label}: {row['img_per_s']:.2f} img/s (other processes: "
                          f"{_fmt_cores(row.get('other_cores'))} cores)",
                          file=sys.stderr, flush=True)
            for reference in variants:
                rows.append(_aggregate(runs[reference]))

    import torch

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {rows[0]['threads'] if rows else '?'}, batch {args.batch}, fused_modconv={args.fused_modconv}"
          + (", THP_MEM_ALLOC_ENABLE=1" if args.thp else "") + f", {args.repeat} run(s) per row")
    hdr = (f"{'config':<7}{'mode':<7}{'ops':<6}{'img/s':>9}{'best':>9}{'official':>10}{'x offic.':>10}{'x ref':>7}"
           f"{'ms/iter':>10}{'iters':>7}{'peak RSS MiB':>14}{'others':>8}")
    print(hdr)
    print("-" * len(hdr))
    ref_speed = {(r["config"], r["mode"]): r["img_per_s"] for r in rows if not r["fast_paths"]}
    for r in rows:
        base = ref_speed.get((r["config"], r["mode"]))
        x_ref = f"{r['img_per_s'] / base:>7.2f}" if (base and r["fast_paths"]) else f"{'':>7}"
        print(f"{r['config']:<7}{r['mode']:<7}{'fast' if r['fast_paths'] else 'ref':<6}{r['img_per_s']:>9.2f}"
              f"{r['best_img_per_s']:>9.2f}{r['official_img_per_s']:>10.1f}{r['speedup_vs_official']:>10.2f}{x_ref}"
              f"{1000 * r['median_s']:>10.1f}{r['iters']:>7}{r['peak_rss_mib']:>14.0f}{_fmt_cores(r.get('other_cores')):>8}")
    print("img/s: median over iterations (warm-up excluded; median of runs with --repeat); best: fastest iteration; "
          "others: CPU cores other processes kept busy during the measurement (worst run); "
          "anything well above 0 makes the numbers pessimistic")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        meta = dict(torch=torch.__version__, cpus=os.cpu_count(), platform=platform.platform(), args=vars(args))
        Path(args.json).write_text(json.dumps(dict(meta=meta, results=rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

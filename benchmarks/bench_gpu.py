#!/usr/bin/env python
"""GPU speed of training and generation, per config and op backend, as one JSON report.

For StyleGAN2 and StyleGAN3-T/R at 256² (``--cbase 16384 --batch 32``, no augmentation, the issue's settings),
each with the Triton kernels and with the PyTorch fast paths (``STYLEGAN_BACKEND=triton|torch``), in a fresh
process each:

* per training phase (Gmain, Greg, Dmain, Dreg, as the loop runs them): ms per call (median), host syncs per
  call (``torch.cuda.set_sync_debug_mode``), peak memory;
* a full iteration (`Trainer._step`: every phase at its interval, Adam, G_ema, statistics): s/kimg over a whole
  lazy-regularisation cycle, and host syncs per iteration;
* G_ema inference at batch 32 (``noise_mode='const'``, no grad): img/s and peak memory.

Reals are random images (the speed does not depend on them); nothing is downloaded. NVIDIA's code on an H200
(issue 13): StyleGAN2 7.41 s/kimg and 1072 img/s, StyleGAN3-T 13.4 s/kimg and 515 img/s in 2.4 GiB.

    python benchmarks/bench_gpu.py --json out/bench_gpu.json
    python benchmarks/bench_gpu.py --configs stylegan3-t --backends triton --iters 32
    python benchmarks/bench_gpu.py --tiny --device cpu --backends torch     # smoke test: 32², tiny nets, CPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "src", ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

CONFIGS = ("stylegan2", "stylegan3-t", "stylegan3-r")
BACKENDS = ("triton", "torch")
GAMMA = {"stylegan2": 1.0, "stylegan3-t": 2.0, "stylegan3-r": 16.0}  # as NVIDIA's docs for 256² (R: its example)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def count_syncs(device, fn: Callable[[], Any]) -> int | None:
    """Host synchronisations while running fn (CUDA's sync debug mode warns on each); None off CUDA."""
    import torch

    if device.type != "cuda":
        fn()
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message).lower() for w in caught)


def timed(device, fn: Callable[[], Any], warmup: int, reps: int) -> list[float]:
    """Seconds per call of fn after `warmup` calls (each call synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def measure(config: str, backend_name: str, a: argparse.Namespace) -> dict[str, Any]:
    """One config with one backend (this process's STYLEGAN_BACKEND): phases, iteration, inference."""
    import dataclasses

    import torch
    from bench_training import random_dataset

    from stylegan.data.dataset import ImageDataset
    from stylegan.ops import backend
    from stylegan.training.distributed import DistEnv
    from stylegan.training.loop import Trainer, cuda_policy
    from stylegan.training.options import resolve

    cuda_policy()  # as `stylegan train`: cuDNN autotuning on, TF32 off
    device = torch.device(a.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = random_dataset(Path(tmp) / "data", a.res, 3, n=max(a.batch, 8))
        flags = {"data": str(data), "cfg": config, "cbase": a.cbase, "batch": a.batch, "gpus": 1, "aug": "noaug",
                 "gamma": GAMMA[config], "mbstd_group": min(4, a.batch), "workers": 0, "metrics": []}
        if a.cmax:
            flags["cmax"] = a.cmax
        opts = resolve(flags, ImageDataset(data).describe())
        opts = dataclasses.replace(opts, snap=10**6)
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        trainer = Trainer(opts, run_dir, DistEnv(0, 1, device), progress=False, log=lambda s: None)

    gen = torch.Generator(device="cpu").manual_seed(1)
    real = (torch.rand([a.batch, 3, a.res, a.res], generator=gen) * 2 - 1).to(device)
    c = torch.zeros([a.batch, 0], device=device)
    z = torch.randn([a.batch, trainer.G.z_dim], generator=gen).to(device)
    loss = trainer.loss
    out: dict[str, Any] = {"config": config, "backend": backend_name, "ops": backend.summary(device),
                           "batch": a.batch, "resolution": a.res, "cbase": a.cbase,
                           "G_params": sum(p.numel() for p in trainer.G.parameters()),
                           "D_params": sum(p.numel() for p in trainer.D.parameters()), "phases": {}}

    def phase_call(phase) -> Callable[[], None]:
        def run() -> None:
            for p in phase.params:
                p.requires_grad_(True)
            loss.accumulate_gradients(phase.name, real, c, z, c, gain=phase.interval, cur_nimg=100_000)
            for p in phase.params:
                p.requires_grad_(False)
                p.grad = None
        return run

    skip = {"Greg"} if opts.loss.pl_weight == 0 else set()
    for phase in trainer.phases:
        if phase.name in skip:
            continue
        fn = phase_call(phase)
        fn()  # compile / tune before counting
        syncs = count_syncs(device, fn)
        _peak_reset(device)
        times = timed(device, fn, a.warmup, a.reps)
        out["phases"][phase.name] = {"ms": round(statistics.median(times) * 1e3, 2), "min_ms": round(min(times) * 1e3, 2),
                                     "syncs": syncs, "peak_gib": _peak_gib(device)}

    def step() -> None:
        trainer._step(real, c)

    for _ in range(a.warmup):
        step()
    _sync(device)
    _peak_reset(device)
    t = time.perf_counter()
    syncs = count_syncs(device, lambda: [step() for _ in range(a.iters)])
    _sync(device)
    seconds = (time.perf_counter() - t) / a.iters
    out["iteration"] = {"iters": a.iters, "ms": round(seconds * 1e3, 2), "s_per_kimg": round(seconds * 1000 / a.batch, 3),
                        "syncs_per_iter": None if syncs is None else round(syncs / a.iters, 2), "peak_gib": _peak_gib(device)}

    G = trainer.G_ema.eval().requires_grad_(False)
    zi = torch.randn([a.infer_batch, G.z_dim], generator=gen).to(device)
    ci = torch.zeros([a.infer_batch, 0], device=device)

    def infer() -> None:
        with torch.no_grad():
            G(zi, ci, noise_mode="const")

    infer()
    _peak_reset(device)
    times = timed(device, infer, a.warmup, a.reps)
    out["inference"] = {"batch": a.infer_batch, "ms": round(statistics.median(times) * 1e3, 2),
                        "img_per_s": round(a.infer_batch / statistics.median(times), 1), "peak_gib": _peak_gib(device)}
    return out


def environment(device: str) -> dict[str, Any]:
    import torch

    from stylegan.ops import backend

    env: dict[str, Any] = {"torch": torch.__version__, "device": device, "python": sys.version.split()[0]}
    d = backend.describe(device)
    env.update(triton=d["triton"], triton_unavailable=d["triton_unavailable"])
    if device.startswith("cuda") and torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset of triton, torch")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--cbase", type=int, default=16384)
    ap.add_argument("--cmax", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--infer-batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="timed calls per phase and for inference")
    ap.add_argument("--iters", type=int, default=16, help="timed iterations (16 = one cycle of the lazy regularisers)")
    ap.add_argument("--tiny", action="store_true", help="smoke-test settings: 16², cbase 256, cmax 16, batch 2, 1 rep, 2 iterations")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per config and backend (a slower one is recorded as timed out)")
    ap.add_argument("--json", type=Path, default=None, help="write the report here (it is always printed)")
    ap.add_argument("--child", nargs=2, metavar=("CONFIG", "BACKEND"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.tiny:
        a.res, a.cbase, a.cmax, a.batch, a.infer_batch, a.reps, a.iters, a.warmup = 16, 256, 16, 2, 2, 1, 2, 0
    if a.child:
        print(json.dumps(measure(*a.child, a)))
        return
    configs, backends = a.configs.split(","), a.backends.split(",")
    for name in configs:
        if name not in CONFIGS:
            ap.error(f"--configs: unknown {name!r}; choose from {', '.join(CONFIGS)}")
    for name in backends:
        if name not in BACKENDS:
            ap.error(f"--backends: unknown {name!r}; choose from {', '.join(BACKENDS)}")
    report: dict[str, Any] = {"settings": {k: v for k, v in vars(a).items() if k not in ("child", "json")},
                              "environment": environment(a.device), "results": []}
    argv = sys.argv[1:]
    for flag in ("--json", "--timeout"):
        if flag in argv:
            i = argv.index(flag)
            del argv[i:i + 2]
    for config in configs:
        for name in backends:
            env = dict(os.environ, STYLEGAN_BACKEND=name)
            t = time.time()
            try:
                r = subprocess.run([sys.executable, __file__, *argv, "--child", config, name], env=env, capture_output=True, text=True,
                                   timeout=a.timeout)
            except subprocess.TimeoutExpired as e:
                stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
                r = subprocess.CompletedProcess(e.cmd, -1, "", stderr + f"\ntimed out after {a.timeout:g} s")
            if r.returncode != 0:
                row: dict[str, Any] = {"config": config, "backend": name, "error": (r.stderr.strip().splitlines() or ["?"])[-1],
                                       "stderr_tail": r.stderr[-4000:]}
            else:
                row = json.loads(r.stdout.strip().splitlines()[-1])
            row["wall_s"] = round(time.time() - t, 1)
            report["results"].append(row)
            print(_summary(row), flush=True)
            if a.json:  # after every row: a run stopped from outside keeps what it measured
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _summary(row: dict[str, Any]) -> str:
    head = f"{row['config']:<12} {row['backend']:<7}"
    if "error" in row:
        return f"{head} FAILED: {row['error']}"
    phases = "  ".join(f"{k} {v['ms']:.1f} ms/{v['syncs'] if v['syncs'] is not None else '-'} syncs" for k, v in row["phases"].items())
    it, inf = row["iteration"], row["inference"]
    return (f"{head} {it['s_per_kimg']:.2f} s/kimg ({it['syncs_per_iter']} syncs/iter, peak {it['peak_gib']} GiB)  "
            f"G {inf['img_per_s']:.0f} img/s (peak {inf['peak_gib']} GiB)  {phases}  [{row['wall_s']:.0f} s]")


if __name__ == "__main__":
    main()

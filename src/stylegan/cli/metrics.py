"""Compute metrics of a generator; results print as JSON lines and can be appended to a file."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..io.load import load_network
from ..metrics import compute_equivariance_metrics
from .common import CliError, resolve_device

# Official metric name -> (keyword of compute_equivariance_metrics, number of samples).
EQUIVARIANCE = {"eqt50k_int": ("eqt_int", 50000), "eqt50k_frac": ("eqt_frac", 50000), "eqr50k": ("eqr", 50000)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="compute metrics of a generator", description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--metrics", required=True, help=f"comma-separated: {', '.join(EQUIVARIANCE)}")
    p.add_argument("--samples", type=int, default=None, help="override the sample count (e.g. 1000 for a quick estimate)")
    p.add_argument("--batch", type=int, default=4, help="images per forward pass (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in EQUIVARIANCE]
    if unknown or not names:
        raise CliError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(EQUIVARIANCE)}")
    if args.samples is not None and args.samples < 1:
        raise CliError("--samples must be >= 1")
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    for name in names:
        flag, default_samples = EQUIVARIANCE[name]
        samples = args.samples or default_samples
        start = time.time()
        try:
            value = compute_equivariance_metrics(
                G, num_samples=samples, batch_size=args.batch, seed=args.seed, device=device,
                **{k: k == flag for k, _ in EQUIVARIANCE.values()},
            )[flag]
        except ValueError as e:
            raise CliError(f"{name}: {e}") from None
        line = json.dumps({"metric": name, "value_db": value, "num_samples": samples, "seconds": round(time.time() - start, 3),
                           "network": str(args.network)})
        print(line)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "a") as f:
                f.write(line + "\n")

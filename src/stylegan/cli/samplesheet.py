"""Per-class sample sheet, as StyleGAN-XL's gen_class_samplesheet.py: for each class, --samples-per-class images
from the same seed (z = RandomState(seed).randn(samples, z_dim)), truncated towards the class's W average (or the
nearest of --centroids). Writes sheet.png with one class per row (or --grid-width images per row, rounded down to
whole classes as the official script does), and with --cells one PNG per image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.sampling import seed_ws
from ..io.images import hwc_uint8, save_png, to_uint8_for
from ..io.load import load_network
from ..ops import NOISE_MODES
from .common import CliError, add_device_arg, centroids_arg, check_class, finite_float, parse_int_list, positive_int, resolve_device, seed, to_pil


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("samplesheet", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--classes", required=True, type=parse_int_list, help="classes, e.g. 0-9,207")
    p.add_argument("--samples-per-class", type=positive_int, default=4, help="images per class (default 4)")
    p.add_argument("--seed", type=seed, default=42, help="seed of the latents, shared by all classes (default 42)")
    p.add_argument("--trunc", type=finite_float, default=1.0, help="class-wise truncation psi (default 1 = none)")
    p.add_argument("--centroids", type=Path, default=None, metavar="FILE",
                   help="multimodal truncation: truncate towards the nearest of these [K, w_dim] centroids (.npy)")
    p.add_argument("--grid-width", type=positive_int, default=None,
                   help="images per row (default: --samples-per-class, i.e. one class per row)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    add_device_arg(p)
    p.add_argument("--cells", action="store_true", help="also write classCCCC-NN.png for every image")
    p.add_argument("--outdir", required=True, type=Path, help="where to write sheet.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    per_row = args.samples_per_class if args.grid_width is None else args.grid_width - args.grid_width % args.samples_per_class
    if per_row < 1:
        raise CliError(f"--grid-width {args.grid_width}: must hold at least one class ({args.samples_per_class} images)")
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    if G.c_dim == 0:
        raise CliError(f"{args.network}: this network is unconditional (c_dim=0); a sample sheet needs classes")
    for k in args.classes:
        check_class(G.c_dim, k)
    centroids = centroids_arg(args.centroids, G)
    convert = to_uint8_for(G)
    tiles = []
    torch.manual_seed(args.seed)  # noise inputs of --noise-mode random (StyleGAN-XL has none)
    with torch.no_grad():
        for k in tqdm(args.classes, desc="samplesheet", unit="class", disable=None):
            ws, _ = seed_ws(G, args.seed, n=args.samples_per_class, class_idx=k, psi=args.trunc, centroids=centroids)
            for i, w in enumerate(ws):
                tiles.append(((k, i), hwc_uint8(G.synthesis(w[None], noise_mode=args.noise_mode)[0].float(), convert)))

    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.cells:
        for (k, i), arr in tiles:
            save_png(to_pil(arr), args.outdir / f"class{k:04d}-{i:02d}.png")
    h, w, ch = tiles[0][1].shape
    rows = -(-len(tiles) // per_row)
    canvas = np.zeros([rows * h, per_row * w, ch], np.uint8)
    for idx, (_, arr) in enumerate(tiles):
        y, x = divmod(idx, per_row)
        canvas[y * h : (y + 1) * h, x * w : (x + 1) * w] = arr
    save_png(to_pil(canvas), args.outdir / "sheet.png")
    print(f"wrote sheet.png ({len(args.classes)} classes x {args.samples_per_class} samples, {per_row} per row) to {args.outdir}")

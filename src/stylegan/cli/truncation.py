"""Truncation figure (StyleGAN paper §3.1 / fig. 8): one row per seed, one column per psi, labelled.

w' = w_avg + psi (w - w_avg): psi = 1 is the untruncated sample, 0 the average image, negative psi the
"anti-face" (StyleGAN-XL: w_avg of the seed's class, drawn per seed without --class). Writes truncation.png,
and with --cells also one PNG per image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.sampling import truncation_centers
from ..io.images import hwc_uint8, labelled, save_png
from ..io.load import load_network
from ..models.common import truncate
from ..ops import NOISE_MODES
from .common import (PER_SEED_CLASS, add_class_arg, add_device_arg, check_trunc_cutoff, non_negative_int, parse_float_list, parse_seed_list,
                     resolve_device, seed_labels, seed_to_z, to_pil)


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("truncation", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--seeds", type=parse_seed_list, default=parse_seed_list("0-5"), help="one row per seed (default 0-5)")
    p.add_argument("--psi", type=parse_float_list, default=parse_float_list("-1,-0.5,0,0.5,0.7,1"),
                   help="one column per truncation psi (default -1,-0.5,0,0.5,0.7,1)")
    p.add_argument("--trunc-cutoff", type=non_negative_int, default=None, help="truncate only the first N ws")
    add_class_arg(p, PER_SEED_CLASS)
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    add_device_arg(p)
    p.add_argument("--cells", action="store_true", help="also write seedNNNN-psiP.png for every image")
    p.add_argument("--outdir", required=True, type=Path, help="where to write truncation.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    check_trunc_cutoff(args.trunc_cutoff, G)
    labels = seed_labels(G, args.seeds, args.class_idx, device)
    rows = []
    with torch.no_grad():
        for i, seed in enumerate(tqdm(args.seeds, desc="truncation", unit="seed", disable=None)):
            z = torch.from_numpy(seed_to_z(seed, G.z_dim)).to(device)
            c = None if labels is None else labels[i : i + 1]
            w = G.mapping(z, c)  # untruncated; every psi below moves the same w toward w_avg (of its class)
            center = truncation_centers(G, w[:, 0], None if c is None else c.argmax(1).cpu().numpy())
            row = []
            for psi in args.psi:
                ws = truncate(w, center, psi, args.trunc_cutoff)
                if args.noise_mode == "random":
                    torch.manual_seed(seed)
                row.append(hwc_uint8(G.synthesis(ws, noise_mode=args.noise_mode)[0].float()))
            rows.append(row)
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.cells:
        for seed, row in zip(args.seeds, rows):
            for psi, arr in zip(args.psi, row):
                save_png(to_pil(arr), args.outdir / f"seed{seed:04d}-psi{psi:g}.png")
    tiles = to_pil(np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0))
    save_png(labelled(tiles, G.img_resolution, rows=[f"seed {s}" for s in args.seeds], cols=[f"psi={p:g}" for p in args.psi]),
             args.outdir / "truncation.png")
    print(f"wrote truncation.png ({len(args.seeds)} seeds x {len(args.psi)} psi values) to {args.outdir}")

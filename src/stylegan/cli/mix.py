"""Style mixing matrix, as NVIDIA's style_mixing.py: row images with some layers' styles taken from column images.

Writes ROW-COL.png for every pair, SEED-SEED.png for every seed's own image, and grid.png with the column
images on top, the row images on the left and the mixes inside (StyleGAN paper, fig. 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.mixing import mix_styles
from ..io.images import hwc_uint8, save_png
from ..io.load import load_network
from ..ops import NOISE_MODES
from .common import (PER_SEED_CLASS, CliError, add_class_arg, add_device_arg, finite_float, parse_int_list, parse_seed_list, resolve_device,
                     seed_labels, seed_to_z, to_pil)


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("mix", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--rows", required=True, type=parse_seed_list, help="seeds of the row images, e.g. 85,100,75")
    p.add_argument("--cols", required=True, type=parse_seed_list, help="seeds of the column images, e.g. 55,821")
    p.add_argument("--styles", type=parse_int_list, default=parse_int_list("0-6"),
                   help="layers (indices into ws) taken from the column image (default 0-6: coarse and middle)")
    p.add_argument("--trunc", type=finite_float, default=1.0, help="truncation psi toward w_avg (default 1 = none)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const",
                   help="noise inputs (default const; random noise is seeded with the row seed)")
    add_class_arg(p, PER_SEED_CLASS)
    add_device_arg(p)
    p.add_argument("--outdir", required=True, type=Path, help="where to write the PNGs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    bad = sorted({s for s in args.styles if s >= G.num_ws})
    if bad:
        raise CliError(f"--styles: layer(s) {','.join(map(str, bad))} out of range, this network has "
                       f"num_ws={G.num_ws} (layers 0-{G.num_ws - 1})")
    seeds = list(dict.fromkeys(args.rows + args.cols))
    labels = seed_labels(G, seeds, args.class_idx, device)

    with torch.no_grad():
        z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in seeds])).to(device)
        ws = G.mapping(z, labels, truncation_psi=args.trunc)
        w_of = dict(zip(seeds, ws))
        mixed = mix_styles(torch.stack([w_of[s] for s in args.rows]), torch.stack([w_of[s] for s in args.cols]), args.styles)
        jobs = [((s, s), w_of[s]) for s in seeds]
        jobs += [((r, col), mixed[i, j]) for i, r in enumerate(args.rows) for j, col in enumerate(args.cols)]
        images: dict[tuple[int, int], np.ndarray] = {}
        for (row, col), w in tqdm(jobs, desc="mix", unit="img", disable=None):
            if args.noise_mode == "random":
                torch.manual_seed(row)
            images[row, col] = hwc_uint8(G.synthesis(w[None], noise_mode=args.noise_mode)[0].float())

    args.outdir.mkdir(parents=True, exist_ok=True)
    for (row, col), arr in images.items():
        save_png(to_pil(arr), args.outdir / f"{row}-{col}.png")
    h, w, ch = images[seeds[0], seeds[0]].shape
    canvas = np.zeros([(len(args.rows) + 1) * h, (len(args.cols) + 1) * w, ch], np.uint8)  # black top-left corner
    for j, col in enumerate(args.cols):
        canvas[:h, (j + 1) * w : (j + 2) * w] = images[col, col]
    for i, row in enumerate(args.rows):
        canvas[(i + 1) * h : (i + 2) * h, :w] = images[row, row]
        for j, col in enumerate(args.cols):
            canvas[(i + 1) * h : (i + 2) * h, (j + 1) * w : (j + 2) * w] = images[row, col]
    save_png(to_pil(canvas), args.outdir / "grid.png")
    print(f"wrote {len(images)} image(s) and grid.png to {args.outdir}")

"""Latent interpolation video, as NVIDIA's gen_video.py: a grid of cells, each looping through its keyframes.

Cell (x, y) of a WxH grid takes keyframes from consecutive seeds: seeds[(y*W + x)*K + k] for k < K,
cycling through the seed list when --num-keyframes asks for more. The video has K * --w-frames frames.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.interpolation import keyframe_interpolator, num_frames
from ..editing.latents import LatentFileError, load_projected_w
from ..io.images import hwc_uint8
from ..io.load import load_network
from ..io.video import FORMATS, VideoWriter
from ..ops import NOISE_MODES
from .common import (PER_SEED_CLASS, CliError, add_class_arg, add_device_arg, finite_float, int_range, output_file, parse_seed_list,
                     positive_float, positive_int, resolve_device, seed, seed_labels, seed_to_z)

VIDEO_KINDS = ("cubic", "linear", "slerp-z")


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("video", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--seeds", type=parse_seed_list, default=None, help="keyframe seeds, e.g. 0-31")
    p.add_argument("--projected-w", type=Path, default=None, metavar="FILE",
                   help="use the ws of this .npz/.npy ([N, num_ws, w_dim], as `stylegan project` writes) as keyframes "
                        "instead of seeds (grid 1x1)")
    p.add_argument("--grid", default="1x1", help="grid width x height, e.g. 4x2 = 4 columns, 2 rows (default 1x1)")
    p.add_argument("--num-keyframes", type=positive_int, default=None,
                   help="keyframes per cell (default: number of seeds / cells, which must divide evenly)")
    p.add_argument("--w-frames", type=positive_int, default=120, help="frames from one keyframe to the next (default 120)")
    p.add_argument("--kind", choices=VIDEO_KINDS, default="cubic",
                   help="cubic / linear: spline through the keyframe ws; slerp-z: spherical interpolation of z, then "
                        "mapping (default cubic)")
    p.add_argument("--trunc", type=finite_float, default=1.0, help="truncation psi of the seeds' ws (default 1 = none)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--noise-seed", type=seed, default=0, help="seed of the noise when --noise-mode random (default 0)")
    add_class_arg(p, PER_SEED_CLASS)
    p.add_argument("--fps", type=positive_float, default=30, help="frames per second (default 30)")
    p.add_argument("--crf", type=int_range(0, 51), default=18, help="x264 constant rate factor, 0 (lossless) to 51 (default 18)")
    add_device_arg(p)
    p.add_argument("--output", required=True, type=output_file(*FORMATS), help="the video: FILE.mp4 (or FILE.gif)")
    p.set_defaults(func=run)


def parse_grid(text: str) -> tuple[int, int]:
    """'4x2' -> (4, 2) = (columns, rows), as gen_video.py's --grid."""
    m = re.fullmatch(r"(\d+)[x,](\d+)", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise CliError(f"--grid {text}: expected WxH with W, H >= 1, e.g. 4x2")
    return int(m.group(1)), int(m.group(2))


def run(args: argparse.Namespace) -> None:
    grid_w, grid_h = parse_grid(args.grid)
    cells = grid_w * grid_h
    if (args.seeds is None) == (args.projected_w is None):
        raise CliError("pass either --seeds or --projected-w")
    if args.projected_w is not None:
        if cells != 1:
            raise CliError(f"--grid {args.grid}: --projected-w makes a 1x1 video")
        if args.kind == "slerp-z":
            raise CliError("--kind slerp-z interpolates z, which --projected-w does not have; use cubic or linear")
        if args.trunc != 1:
            raise CliError("--trunc applies to seeds; the ws of --projected-w are used as they are")
    elif args.num_keyframes is None and len(args.seeds) % cells != 0:
        raise CliError(f"--seeds: {len(args.seeds)} seed(s) do not fill a {args.grid} grid evenly "
                       f"(need a multiple of {cells}, or pass --num-keyframes)")

    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    if args.kind == "slerp-z" and G.c_dim > 0 and args.class_idx is None:
        raise CliError("--kind slerp-z maps interpolated z with one label: pass --class for a conditional network")

    with torch.no_grad():
        if args.projected_w is not None:
            try:
                keys = load_projected_w(args.projected_w, G).to(device)
            except LatentFileError as e:
                raise CliError(f"--projected-w {e}") from None
            k = args.num_keyframes or keys.shape[0]
            keys = keys[torch.arange(k) % keys.shape[0]][None]  # [1, K, num_ws, w_dim]
        else:
            k = args.num_keyframes or len(args.seeds) // cells
            seeds = [args.seeds[i % len(args.seeds)] for i in range(cells * k)]
            z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in seeds])).to(device)
            if args.kind == "slerp-z":
                keys = z.reshape(cells, k, G.z_dim)
            else:
                keys = G.mapping(z, seed_labels(G, seeds, args.class_idx, device), truncation_psi=args.trunc)
                keys = keys.reshape(cells, k, G.num_ws, G.w_dim)
        kind = "slerp" if args.kind == "slerp-z" else args.kind
        try:
            paths = [keyframe_interpolator(cell_keys, args.w_frames, kind, loop=True) for cell_keys in keys]
        except ValueError as e:
            raise CliError(f"--kind {args.kind}: {e}") from None

        cell_labels = seed_labels(G, [0] * cells, args.class_idx, device) if args.kind == "slerp-z" else None
        if args.noise_mode == "random":
            torch.manual_seed(args.noise_seed)
        total = num_frames(k, args.w_frames, loop=True)
        with VideoWriter(args.output, fps=args.fps, crf=args.crf) as video:
            for frame in tqdm(range(total), desc="video", unit="frame", disable=None):
                lat = torch.cat([path(np.array([frame])) for path in paths])  # [cells, ...]
                ws = G.mapping(lat, cell_labels, truncation_psi=args.trunc) if args.kind == "slerp-z" else lat
                img = G.synthesis(ws, noise_mode=args.noise_mode).float()
                tiles = np.stack([hwc_uint8(one) for one in img])  # [cells, H, W, C], row-major over the grid
                _, h, w, ch = tiles.shape
                canvas = tiles.reshape(grid_h, grid_w, h, w, ch).transpose(0, 2, 1, 3, 4)
                video.append(canvas.reshape(grid_h * h, grid_w * w, ch))
    print(f"wrote {total} frame(s) of a {grid_w}x{grid_h} grid to {video.path}")


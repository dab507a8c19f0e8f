"""Generate images for a list of seeds, drawing latents as NVIDIA's gen_images.py does, or render projected ws.

StyleGAN-XL networks follow StyleGAN-XL's gen_images.py: without --class, each seed draws its own class;
truncation is class-wise (or towards the nearest of --centroids); pixels are (x + 1) * 255 / 2, truncated."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.latents import LatentFileError, load_projected_w
from ..editing.projection import load_projected_noise
from ..editing.sampling import nearest_centroids
from ..io.images import hwc_uint8, save_npy, save_png, to_uint8_for
from ..io.load import load_network
from ..models.common import Generator, truncate
from ..models.stylegan3 import set_transform
from ..ops import NOISE_MODES
from .common import (PER_SEED_CLASS, CliError, add_class_arg, add_device_arg, centroids_arg, check_trunc_cutoff, finite_float, non_negative_int,
                     parse_float_pair, parse_seed_list, positive_int, resolve_device, seed_labels, seed_to_z, to_pil)


def parse_grid(text: str) -> tuple[int, int]:
    """'2x4' -> (2, 4) = (rows, columns) (an argparse `type`)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"expected RxC with R, C >= 1, e.g. 2x4, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("generate", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--seeds", type=parse_seed_list, default=None, help="seeds, e.g. 0-7,12 (each in [0, 2^32))")
    p.add_argument("--projected-w", type=Path, default=None, metavar="FILE",
                   help="render the ws of a projected_w.npz (with its optimised noise maps) as projNN.png, instead of seeds")
    p.add_argument("--trunc", type=finite_float, default=1.0, help="truncation psi (default 1 = none)")
    p.add_argument("--trunc-cutoff", type=non_negative_int, default=None, help="truncate only the first N ws")
    add_class_arg(p, PER_SEED_CLASS)
    p.add_argument("--centroids", type=Path, default=None, metavar="FILE",
                   help="multimodal truncation: truncate towards the nearest of these [K, w_dim] centroids (.npy)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--translate", type=parse_float_pair, default=None, metavar="X,Y",
                   help="StyleGAN3 only: translate the image by X,Y (in units of the image size, e.g. 0.25,0)")
    p.add_argument("--rotate", type=finite_float, default=None, metavar="DEG", help="StyleGAN3 only: rotate the image by DEG degrees")
    p.add_argument("--outdir", required=True, type=Path, help="where to write seedNNNN.png")
    p.add_argument("--grid", type=parse_grid, default=None, metavar="RxC", help="also write grid.png with R rows x C columns, e.g. 2x4")
    p.add_argument("--raw", action="store_true", help="also write the unclamped float32 CHW output as seedNNNN.npy")
    p.add_argument("--batch", type=positive_int, default=1,
                   help="images per forward pass (default 1, as the official gen_images.py; larger is faster but "
                        "fp16 networks then round differently)")
    add_device_arg(p)
    p.add_argument("--fp32", action="store_true", help="never use fp16, even where the network asks for it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if (args.seeds is None) == (args.projected_w is None):
        raise CliError("pass either --seeds or --projected-w (one of the two)")
    if args.projected_w is not None and (args.trunc != 1 or args.trunc_cutoff is not None or args.class_idx is not None
                                         or args.centroids is not None):
        raise CliError("--projected-w: ws are rendered as stored; --trunc, --trunc-cutoff, --class and --centroids do not apply")
    if args.grid is not None and args.seeds is not None and args.grid[0] * args.grid[1] != len(args.seeds):
        raise CliError(f"--grid {args.grid[0]}x{args.grid[1]}: expected RxC with R*C = number of seeds ({len(args.seeds)})")
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    if args.projected_w is not None:
        try:
            ws = load_projected_w(args.projected_w, G)
            noise = load_projected_noise(args.projected_w, G) if len(ws) == 1 else {}
        except LatentFileError as e:
            raise CliError(f"--projected-w {e}") from None
        if args.grid is not None and args.grid[0] * args.grid[1] != len(ws):
            raise CliError(f"--grid {args.grid[0]}x{args.grid[1]}: expected RxC with R*C = number of ws in {args.projected_w} ({len(ws)})")
    labels = None if args.projected_w is not None else seed_labels(G, args.seeds, args.class_idx, device)
    centroids = centroids_arg(args.centroids, G)
    if args.translate is not None or args.rotate is not None:
        try:
            set_transform(G, args.translate or (0.0, 0.0), args.rotate or 0.0)
        except ValueError:
            raise CliError("--translate/--rotate: only StyleGAN3 networks can be translated or rotated; "
                           f"{args.network} holds a {type(G).__module__.rsplit('.', 1)[-1]} generator") from None
    check_trunc_cutoff(args.trunc_cutoff, G)
    args.outdir.mkdir(parents=True, exist_ok=True)
    grid = _Grid(args.grid) if args.grid is not None else None
    images = (_render_projected(G, ws.to(device), noise, args) if args.projected_w is not None
              else _render_seeds(G, labels, centroids, device, args))
    count = 0
    for name, img in images:  # each image is written as soon as it is made; only --grid keeps a copy (its canvas)
        arr = hwc_uint8(img, to_uint8_for(G))
        save_png(to_pil(arr), args.outdir / f"{name}.png")
        if args.raw:
            save_npy(img.cpu().numpy(), args.outdir / f"{name}.npy")
        if grid is not None:
            grid.add(count, arr)
        count += 1
    if grid is not None and grid.canvas is not None:
        save_png(to_pil(grid.canvas), args.outdir / "grid.png")
    print(f"wrote {count} image(s) to {args.outdir}")


class _Grid:
    """The rows x cols canvas of grid.png, filled tile by tile."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.rows, self.cols = shape
        self.canvas: np.ndarray | None = None

    def add(self, index: int, tile: np.ndarray) -> None:
        h, w, ch = tile.shape
        if self.canvas is None:
            self.canvas = np.zeros([self.rows * h, self.cols * w, ch], np.uint8)
        r, c = divmod(index, self.cols)
        self.canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile


def _render_projected(G: Generator, ws: torch.Tensor, noise: dict[str, torch.Tensor],
                      args: argparse.Namespace) -> Iterator[tuple[str, torch.Tensor]]:
    """(projNN, [C, H, W] image) for each w in the file, one per forward pass, with the file's noise maps in 'const' mode."""
    bufs = dict(G.synthesis.named_buffers())
    with torch.no_grad():
        for k, v in noise.items():
            bufs[k].copy_(v)
        for i in tqdm(range(len(ws)), desc="generate", unit="image", disable=None):
            if args.noise_mode == "random":
                torch.manual_seed(i)
            img = G.synthesis(ws[i : i + 1], noise_mode=args.noise_mode, force_fp32=args.fp32).float()
            yield f"proj{i:02d}", img[0]


def _render_seeds(G: Generator, labels: torch.Tensor | None, centroids: torch.Tensor | None, device: torch.device,
                  args: argparse.Namespace) -> Iterator[tuple[str, torch.Tensor]]:
    """(seedNNNN, [C, H, W] image) for each seed, `--batch` seeds per forward pass, `labels` [len(seeds), c_dim] one
    per seed. With `centroids`, the untruncated w moves towards its nearest centroid instead of the W average
    (multimodal truncation, as StyleGAN-XL's gen_utils)."""
    # Random noise is drawn per seed so that an image does not depend on its batch.
    batch = 1 if args.noise_mode == "random" else args.batch
    with torch.no_grad():
        for start in tqdm(range(0, len(args.seeds), batch), desc="generate", unit="batch", disable=None):
            seeds = args.seeds[start : start + batch]
            z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in seeds])).to(device)
            c = None if labels is None else labels[start : start + len(seeds)]
            if args.noise_mode == "random":
                torch.manual_seed(seeds[0])
            if centroids is None:
                img = G(z, c, truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, noise_mode=args.noise_mode,
                        force_fp32=args.fp32).float()
            else:
                w = G.mapping(z, c)
                ws = truncate(w, nearest_centroids(w[:, 0], centroids), args.trunc, args.trunc_cutoff)
                img = G.synthesis(ws, noise_mode=args.noise_mode, force_fp32=args.fp32).float()
            for seed, one in zip(seeds, img):
                yield f"seed{seed:04d}", one

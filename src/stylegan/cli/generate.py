"""Generate images for a list of seeds, drawing latents as NVIDIA's gen_images.py does, or render projected ws.

StyleGAN-XL networks follow StyleGAN-XL's gen_images.py: without --class, each seed draws its own class;
truncation is class-wise (or towards the nearest of --centroids); pixels are (x + 1) * 255 / 2, truncated."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.latents import LatentFileError, load_projected_w
from ..editing.projection import load_projected_noise
from ..editing.sampling import nearest_centroids
from ..io.images import hwc_uint8, to_uint8_for
from ..io.load import load_network
from ..models.common import Generator, truncate
from ..models.stylegan3 import set_transform
from ..ops import NOISE_MODES
from .common import CliError, centroids_arg, parse_float_pair, parse_int_list, resolve_device, seed_labels, seed_to_z, to_pil


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from seeds", description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--seeds", type=parse_int_list, default=None, help="seeds, e.g. 0-7,12")
    p.add_argument("--projected-w", type=Path, default=None, metavar="FILE",
                   help="render the ws of a projected_w.npz (with its optimised noise maps) as projNN.png, instead of seeds")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1 = none)")
    p.add_argument("--trunc-cutoff", type=int, default=None, help="truncate only the first N ws")
    p.add_argument("--class", dest="class_idx", type=int, default=None,
                   help="class label of a conditional network (StyleGAN-XL: default one class drawn per seed)")
    p.add_argument("--centroids", type=Path, default=None, metavar="FILE",
                   help="multimodal truncation: truncate towards the nearest of these [K, w_dim] centroids (.npy)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--translate", type=parse_float_pair, default=None, metavar="X,Y",
                   help="StyleGAN3 only: translate the image by X,Y (in units of the image size, e.g. 0.25,0)")
    p.add_argument("--rotate", type=float, default=None, metavar="DEG", help="StyleGAN3 only: rotate the image by DEG degrees")
    p.add_argument("--outdir", required=True, type=Path, help="where to write seedNNNN.png")
    p.add_argument("--grid", default=None, help="also write grid.png with R rows x C columns, e.g. 2x4")
    p.add_argument("--raw", action="store_true", help="also write the unclamped float32 CHW output as seedNNNN.npy")
    p.add_argument("--batch", type=int, default=1,
                   help="images per forward pass (default 1, as the official gen_images.py; larger is faster but "
                        "fp16 networks then round differently)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--fp32", action="store_true", help="never use fp16, even where the network asks for it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if (args.seeds is None) == (args.projected_w is None):
        raise CliError("pass either --seeds or --projected-w (one of the two)")
    if args.projected_w is not None and (args.trunc != 1 or args.trunc_cutoff is not None or args.class_idx is not None
                                         or args.centroids is not None):
        raise CliError("--projected-w: ws are rendered as stored; --trunc, --trunc-cutoff, --class and --centroids do not apply")
    if args.batch < 1:
        raise CliError("--batch must be >= 1")
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    if args.projected_w is not None:
        try:
            ws = load_projected_w(args.projected_w, G)
            noise = load_projected_noise(args.projected_w, G) if len(ws) == 1 else {}
        except LatentFileError as e:
            raise CliError(f"--projected-w {e}") from None
        names = [f"proj{i:02d}" for i in range(len(ws))]
    else:
        names = [f"seed{s:04d}" for s in args.seeds]
    grid = None
    if args.grid is not None:
        m = re.fullmatch(r"(\d+)x(\d+)", args.grid)
        if not m or int(m.group(1)) * int(m.group(2)) != len(names):
            what = "seeds" if args.projected_w is None else f"ws in {args.projected_w}"
            raise CliError(f"--grid {args.grid}: expected RxC with R*C = number of {what} ({len(names)})")
        grid = int(m.group(1)), int(m.group(2))
    labels = None if args.projected_w is not None else seed_labels(G, args.seeds, args.class_idx, device)
    centroids = centroids_arg(args.centroids, G)
    if args.translate is not None or args.rotate is not None:
        try:
            set_transform(G, args.translate or (0.0, 0.0), args.rotate or 0.0)
        except ValueError:
            raise CliError("--translate/--rotate: only StyleGAN3 networks can be translated or rotated; "
                           f"{args.network} holds a {type(G).__module__.rsplit('.', 1)[-1]} generator") from None
    if args.trunc_cutoff is not None and not 0 <= args.trunc_cutoff <= G.num_ws:
        raise CliError(f"--trunc-cutoff {args.trunc_cutoff}: must be between 0 and num_ws={G.num_ws}")
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.projected_w is not None:
        tiles = _render_projected(G, ws.to(device), noise, args)
    else:
        tiles = _render_seeds(G, labels, centroids, device, args)
    if grid is not None:
        rows, cols = grid
        h, w, ch = tiles[0].shape
        canvas = np.stack(tiles).reshape(rows, cols, h, w, ch).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, ch)
        to_pil(canvas).save(args.outdir / "grid.png")
    print(f"wrote {len(names)} image(s) to {args.outdir}")


def _save(one: torch.Tensor, name: str, args: argparse.Namespace, G: Generator) -> np.ndarray:
    arr = hwc_uint8(one, to_uint8_for(G))
    to_pil(arr).save(args.outdir / f"{name}.png")
    if args.raw:
        np.save(args.outdir / f"{name}.npy", one.cpu().numpy())
    return arr


def _render_projected(G: Generator, ws: torch.Tensor, noise: dict[str, torch.Tensor],
                      args: argparse.Namespace) -> list[np.ndarray]:
    """projNN.png for each w in the file, one per forward pass, with the file's noise maps in 'const' mode."""
    bufs = dict(G.synthesis.named_buffers())
    with torch.no_grad():
        for k, v in noise.items():
            bufs[k].copy_(v)
        tiles = []
        for i in tqdm(range(len(ws)), desc="generate", unit="image", disable=None):
            if args.noise_mode == "random":
                torch.manual_seed(i)
            img = G.synthesis(ws[i : i + 1], noise_mode=args.noise_mode, force_fp32=args.fp32).float()
            tiles.append(_save(img[0], f"proj{i:02d}", args, G))
    return tiles


def _render_seeds(G: Generator, labels: torch.Tensor | None, centroids: torch.Tensor | None, device: torch.device,
                  args: argparse.Namespace) -> list[np.ndarray]:
    """seedNNNN.png for each seed, `labels` [len(seeds), c_dim] one per seed. With `centroids`, the untruncated w moves
    towards its nearest centroid instead of the W average (multimodal truncation, as StyleGAN-XL's gen_utils)."""
    # Random noise is drawn per seed so that an image does not depend on its batch.
    batch = 1 if args.noise_mode == "random" else args.batch
    tiles = []
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
                tiles.append(_save(one, f"seed{seed:04d}", args, G))
    return tiles


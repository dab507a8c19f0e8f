"""Attribute images to a generator by how well they project into its W (StyleGAN2 paper, section 5.1, Figure 10)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.projection import project, w_statistics
from ..io.checkpoint import atomic_write_bytes
from ..io.images import hwc_uint8, save_png
from ..io.load import load_network
from .common import (CliError, add_projection_args, class_label, load_target, load_vgg, metric_name, non_negative_int, resolve_device, seed_to_z,
                     to_pil, uint8_to_target)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("attribute", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--images", required=True, type=Path, help="folder of real images to project")
    p.add_argument("--generated", type=non_negative_int, default=0, metavar="N",
                   help="also generate N images from the network (seeds 0..N-1, psi=1) and project them")
    p.add_argument("--limit", type=non_negative_int, default=None, metavar="K", help="project only the first K images of --images (sorted by name)")
    add_projection_args(p)
    p.add_argument("--outdir", required=True, type=Path, help="where to write attribution.csv/.png/.json")
    p.set_defaults(func=run)


def list_images(folder: Path, limit: int | None) -> list[Path]:
    if not folder.is_dir():
        raise CliError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[:limit] if limit is not None else files
    return files


def summary(distances: list[float]) -> dict[str, float | int | None]:
    """Per-kind statistics of attribution.json."""
    if not distances:
        return {"count": 0, "mean": None, "median": None}
    return {"count": len(distances), "mean": statistics.fmean(distances), "median": statistics.median(distances)}


def plot_histograms(rows: list[tuple[str, float, str]], metric: str) -> bytes:
    """PNG bytes: overlaid histograms of the distances of real and generated images (Figure 10 of the StyleGAN2 paper)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray([d for _, d, _ in rows])
    bins = np.linspace(values.min(), values.max() if values.max() > values.min() else values.min() + 1e-6, 21)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for kind, color in (("real", "tab:blue"), ("generated", "tab:orange")):
        d = [x for _, x, k in rows if k == kind]
        if d:
            ax.hist(d, bins=bins, alpha=0.5, color=color, label=f"{kind} ({len(d)})")
    ax.set_xlabel(metric_name(metric))
    ax.set_ylabel("images")
    ax.set_title("distance of each image to its projection")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def run(args: argparse.Namespace) -> None:
    files = list_images(args.images, args.limit)
    if not files and not args.generated:
        raise CliError(f"--images {args.images}: no images ({', '.join(IMAGE_SUFFIXES)}) and no --generated")
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    c = class_label(G.c_dim, args.class_idx, device)
    targets = [(str(f), "real", load_target(f, G)) for f in files]  # read all first: a bad file fails before any work
    vgg = load_vgg(args, device, "attribute")
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.generated:
        gen_dir = args.outdir / "generated"
        gen_dir.mkdir(exist_ok=True)
        with torch.no_grad():
            for seed in range(args.generated):
                z = torch.from_numpy(seed_to_z(seed, G.z_dim)).to(device)
                arr = hwc_uint8(G(z, c, truncation_psi=1, noise_mode="const")[0].float())
                path = gen_dir / f"seed{seed:04d}.png"
                save_png(to_pil(arr), path)
                targets.append((str(path), "generated", load_target(path, G)))
    w_stats = w_statistics(G, c)
    rows: list[tuple[str, float, str]] = []
    num_steps = args.num_steps or 1000
    for name, kind, arr in tqdm(targets, desc="attribute", unit="image", disable=None):
        result = project(G, uint8_to_target(arr), num_steps=num_steps, space="w", distance=args.distance, vgg=vgg, c=c,
                         seed=args.seed, noise_reg=args.noise_reg, w_stats=w_stats)
        rows.append((name, result.distance, kind))

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "distance", "kind"])
    writer.writerows((name, f"{d:.8g}", kind) for name, d, kind in rows)
    atomic_write_bytes(args.outdir / "attribution.csv", text.getvalue().encode())
    atomic_write_bytes(args.outdir / "attribution.png", plot_histograms(rows, args.distance))
    stats = {kind: summary([d for _, d, k in rows if k == kind]) for kind in ("real", "generated")}
    info = {"metric": args.distance, "metric_name": metric_name(args.distance), "num_steps": num_steps, "space": "w", **stats}
    atomic_write_bytes(args.outdir / "attribution.json", (json.dumps(info, indent=2) + "\n").encode())
    print(f"projected {len(rows)} image(s), distance = {metric_name(args.distance)}: "
          + "; ".join(f"{k} mean {v['mean']:.4f} median {v['median']:.4f} (n={v['count']})" for k, v in stats.items() if v["count"])
          + f"; wrote {args.outdir / 'attribution.csv'}, attribution.png, attribution.json")

"""The papers' analysis figures: each writes a PNG plot and a JSON of its numbers into --outdir."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import torch

from ..io.errors import NetworkLoadError
from ..io.load import load_network
from ..metrics.detectors import DetectorUnavailable
from ..models.common import Generator
from ..ops import NOISE_MODES
from .common import CliError, add_device_arg, int_range, non_negative_float, positive_float, positive_int, resolve_device, seed


def _common(p: argparse.ArgumentParser, network_required: bool = True, seed_help: str = "random seed (default 0)") -> None:
    p.add_argument("--outdir", required=True, type=Path, help="where to write the PNG and JSON")
    p.add_argument("--seed", type=seed, default=0, help=seed_help)
    add_device_arg(p)
    if network_required:
        p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("analyze", help=help, description=__doc__)
    p.set_defaults(func=run)
    kinds = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")

    q = kinds.add_parser("resolution-usage", help="StyleGAN2 Fig. 8: each tRGB's share of the image (skip generators)",
                         description="Relative std of each resolution's upsampled tRGB output (StyleGAN2 §4.2, Figure 8).")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--network", help="one checkpoint")
    src.add_argument("--run", type=Path, help="a training run folder: every network-snapshot-*.safetensors, over kimg")
    q.add_argument("--samples", type=positive_int, default=1024, help="random w per network (default 1024, as the paper)")
    q.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    _common(q, network_required=False)
    q.set_defaults(analyze_func=run_resolution_usage)

    q = kinds.add_parser("ppl", help="StyleGAN2 Fig. 5: histogram of per-image path lengths, lowest/highest grids",
                         description="Per-image perceptual path lengths in W, end-point sampling, epsilon 1e-4 (StyleGAN2 Figure 5).")
    _common(q, seed_help="seed of the sample batches, as the ppl2_wend metric's (default 0)")
    q.add_argument("--samples", type=int_range(2), default=50_000, help="samples, at least 2 (default 50000, as the paper)")
    q.add_argument("--distance", choices=("lpips", "pixel-mse"), default="lpips",
                   help="lpips (needs the VGG16 weights) or pixel-mse (a labelled pixel-space stand-in, not PPL)")
    q.add_argument("--grid", type=positive_int, default=16, help="images in each of the lowest/highest grids (default 16)")
    q.set_defaults(analyze_func=run_ppl)

    q = kinds.add_parser("jacobian", help="StyleGAN2 supp. C Fig. 7: singular values of the synthesis Jacobian",
                         description="Normalised singular values of d image / d w at random w, mean and std over samples.")
    _common(q)
    q.add_argument("--samples", type=positive_int, default=10, help="random w (default 10)")
    q.add_argument("--space", choices=("w", "w+", "both"), default="w", help="w broadcast to all layers, W+, or both (default w)")
    q.add_argument("--max-elements", type=positive_int, default=2**26,
                   help="refuse Jacobians with more elements (pixels x latent dims) than this (default 2^26)")
    q.set_defaults(analyze_func=run_jacobian)

    q = kinds.add_parser("droplets", help="StyleGAN2 Fig. 1: per-layer peak-to-mean ratio of feature magnitudes",
                         description="Per-layer feature-map statistics that reveal droplet artifacts (StyleGAN2 §2, Figure 1).")
    _common(q)
    q.add_argument("--samples", type=positive_int, default=64, help="random w (default 64)")
    q.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    q.set_defaults(analyze_func=run_droplets)

    q = kinds.add_parser("spectrum", help="average power spectra of generated vs real images (as stylegan3 avg_spectra.py)",
                         description="Average power spectra (Kaiser window, 4x zero padding) of generated and real images.")
    _common(q, network_required=False, seed_help="first generator seed and dataset subset seed (default 0)")
    q.add_argument("--network", help="generator to sample")
    q.add_argument("--data", help="real images: dataset zip or folder")
    q.add_argument("--images", type=Path, help="a folder of images (e.g. from stylegan generate)")
    q.add_argument("--num", type=positive_int, default=1000, help="images per source (default 1000)")
    q.add_argument("--std", type=positive_float, default=None,
                   help="normalising pixel std (0..255 units; default: measured on the real images, else the first source)")
    q.add_argument("--beta", type=non_negative_float, default=8.0, help="Kaiser window shape (default 8)")
    q.add_argument("--interp", type=positive_int, default=4, help="frequency-domain interpolation (zero padding) factor (default 4)")
    q.set_defaults(analyze_func=run_spectrum)


def run(args: argparse.Namespace) -> None:
    args.analyze_func(args)


def _generator(path: str, device: torch.device) -> Generator:
    return load_network(path, device=device).generator


def _report(paths: Iterable[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


def run_resolution_usage(args: argparse.Namespace) -> None:
    from ..analysis import resolution

    device = resolve_device(args.device)
    if args.run is not None and not args.run.is_dir():
        raise CliError(f"--run {args.run}: not a folder")
    try:
        if args.run is not None:
            usage = resolution.resolution_usage_run(args.run, args.samples, args.seed, device, args.noise_mode)
        else:
            usage = resolution.resolution_usage(_generator(args.network, device), args.samples, args.seed, device, args.noise_mode)
    except NetworkLoadError:
        raise
    except ValueError as e:
        raise CliError(f"{'--run' if args.run is not None else '--network'} {args.run or args.network}: {e}") from None
    _report(resolution.write_usage(usage, args.outdir))


def run_ppl(args: argparse.Namespace) -> None:
    from ..analysis import ppl

    device = resolve_device(args.device)
    G = _generator(args.network, device)
    try:
        result, lowest, highest = ppl.ppl_samples(G, args.samples, args.seed, args.distance, device, args.grid)
    except DetectorUnavailable as e:
        raise CliError(f"--distance lpips: {e} (or use --distance pixel-mse)") from None
    _report(ppl.write_ppl(result, lowest, highest, args.outdir))


def run_jacobian(args: argparse.Namespace) -> None:
    from ..analysis import jacobian

    device = resolve_device(args.device)
    G = _generator(args.network, device)
    spaces = ("w", "w+") if args.space == "both" else (args.space,)
    for space in spaces:
        rows, cols = jacobian.jacobian_shape(G, space)
        if rows * cols > args.max_elements:
            raise CliError(f"--max-elements {args.max_elements}: the {space} Jacobian of {args.network} has {rows} x {cols} = "
                           f"{rows * cols:,} elements; this analysis is for small networks")
    results = [jacobian.jacobian_spectrum(G, args.samples, args.seed, space, device, args.max_elements) for space in spaces]
    _report(jacobian.write_spectra(results, args.outdir))


def run_droplets(args: argparse.Namespace) -> None:
    from ..analysis import droplets

    device = resolve_device(args.device)
    G = _generator(args.network, device)
    try:
        stats, maps = droplets.droplet_stats(G, args.samples, args.seed, device, args.noise_mode)
    except ValueError as e:
        raise CliError(f"--network {args.network}: {e}") from None
    _report(droplets.write_droplets(stats, maps, args.outdir))


def run_spectrum(args: argparse.Namespace) -> None:
    from ..analysis import spectrum
    from ..data.common import DatasetError

    if args.network is None and args.data is None and args.images is None:
        raise CliError("give at least one image source: --network, --data or --images")
    if args.images is not None and not args.images.is_dir():
        raise CliError(f"--images {args.images}: not a folder")
    device = resolve_device(args.device)
    G = _generator(args.network, device) if args.network is not None else None
    sources = []
    try:
        if args.data is not None:
            count, res, batches = spectrum.dataset_images(args.data, args.num, args.seed)
            sources.append(("real", spectrum.average_spectrum(batches, res, count, "real", args.beta, args.interp)))
        if args.images is not None:
            count, res, batches = spectrum.dataset_images(args.images, args.num, args.seed)
            sources.append(("images", spectrum.average_spectrum(batches, res, count, "images", args.beta, args.interp)))
        if G is not None:
            batches = spectrum.generated_images(G, args.num, args.seed, device)
            sources.append(("generated", spectrum.average_spectrum(batches, G.img_resolution, args.num, "generated",
                                                                   args.beta, args.interp)))
        result, spectra = spectrum.compare_spectra(sources, args.std, args.beta, args.interp)
    except (ValueError, DatasetError) as e:
        raise CliError(f"spectrum: {e}") from None
    _report(spectrum.write_spectra(result, spectra, args.outdir))

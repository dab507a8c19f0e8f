"""Export a generator as ONNX or TorchScript (reference ops, float32, dynamic batch; docs/export.md), checked
against the eager network on a few seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.export import DEFAULT_OPSET, EXPORT_NOISE_MODES, FORMATS, MIN_OPSET, PARTS, TOLERANCE, export_generator
from ..io.load import load_network
from .common import CliError, check_trunc_cutoff, int_range, non_negative_int

SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth")}  # --format -> file name endings of --out


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("export", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (needs the export extra) or torchscript")
    p.add_argument("--out", required=True, type=Path, help="file to write (.onnx or .pt)")
    p.add_argument("--part", choices=PARTS, default="generator",
                   help="generator: z (+ c, psi) -> image; synthesis: ws -> image (default generator)")
    p.add_argument("--noise-mode", choices=EXPORT_NOISE_MODES, default="const",
                   help="noise inputs baked into the graph: the stored maps (const, default) or none")
    p.add_argument("--trunc-cutoff", type=non_negative_int, default=None, help="truncate only the first N ws (default: all)")
    p.add_argument("--opset", type=int_range(MIN_OPSET), default=DEFAULT_OPSET, help=f"ONNX opset, >= 17 (default {DEFAULT_OPSET})")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help=f"skip running the file against the eager network (default: verify, max |Δ| <= {TOLERANCE:g})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if args.format == "onnx":
        try:
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as e:
            raise CliError(f"--format onnx needs the export extra: pip install 'stylegan[export]' ({e})") from None
    if args.out.is_dir():
        raise CliError(f"--out {args.out}: is a directory, give a file name")
    if args.out.suffix.lower() not in SUFFIXES[args.format]:
        raise CliError(f"--out {args.out}: a {args.format} file ends in {' or '.join(SUFFIXES[args.format])}")
    G = load_network(args.network).generator
    check_trunc_cutoff(args.trunc_cutoff, G)
    try:
        result = export_generator(G, args.out, args.format, part=args.part, noise_mode=args.noise_mode,
                                  truncation_cutoff=args.trunc_cutoff, opset=args.opset, check=args.verify)
    except RuntimeError as e:
        raise CliError(str(e).splitlines()[0]) from None
    inputs = ", ".join(f"{name} {shape}" for name, shape in result.inputs.items())
    print(f"wrote {args.out} ({args.format}, {args.part}); inputs: {inputs}; output: img [N, {G.img_channels}, "
          f"{G.img_resolution}, {G.img_resolution}]; {result.seconds:.1f} s")
    if result.max_abs_diff is not None:
        print(f"verified against the eager network on seeds 0-2 (batch sizes {', '.join(map(str, result.batch_sizes))}): "
              f"max |Δ| = {result.max_abs_diff:.3g}")

"""Rewrite a checkpoint in another format (G, D and G_ema, whichever are present)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch

from ..io.checkpoint import atomic_write_bytes
from ..io.load import load_network
from ..models.registry import NetworkSpec
from ..models.stylegan2 import Discriminator, Generator
from .common import CliError

SUFFIXES = {"native": (".safetensors",), "rosinality": (".pt", ".pth")}  # output format -> file name endings


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("convert", help=help, description=__doc__)
    p.add_argument("src", help="any format load_network reads")
    p.add_argument("dst", type=Path, help="output path")
    p.add_argument("--to", choices=("native", "rosinality"), default=None,
                   help="output format (default: from the extension, .safetensors native, .pt/.pth rosinality)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    fmt = args.to or next((f for f, suffixes in SUFFIXES.items() if args.dst.suffix.lower() in suffixes), None)
    if fmt is None or args.dst.suffix.lower() not in SUFFIXES[fmt]:
        raise CliError(f"{args.dst}: " + (f"the {fmt} format is written as {' or '.join(SUFFIXES[fmt])}" if fmt else
                                          "unknown output format; use .safetensors (native) or .pt/.pth (rosinality)"))
    if args.dst.resolve() == Path(args.src).resolve():
        raise CliError("destination is the source file; choose another path")
    net = load_network(args.src)
    if fmt == "native":
        net.save(args.dst)
    else:
        from ..io.rosinality import to_rosinality

        g = net.generator
        if not isinstance(g, Generator):
            raise CliError(f"{args.src}: rosinality's format holds StyleGAN2 networks only, this is a {NetworkSpec.of(g).family} generator")
        d_cfg = net.D.config if isinstance(net.D, Discriminator) else None
        states = {name: module.state_dict() for name, module in net.networks().items()}
        try:
            payload = to_rosinality(g.config, d_cfg, states)
        except ValueError as e:
            raise CliError(f"{args.src}: cannot be written in rosinality's format: {e}") from None
        buf = io.BytesIO()
        torch.save(payload, buf)
        atomic_write_bytes(args.dst, buf.getvalue())
    print(f"wrote {args.dst} ({fmt}: {', '.join(net.networks())})")

"""Write a freshly initialised network: a starting point, or a demo that needs no download."""

from __future__ import annotations

import argparse
import copy

import torch

from ..io.load import Network
from ..models.stylegan2 import Discriminator, Generator
from ..training.presets import NETWORK_PRESETS, network_preset
from .common import non_negative_int, output_file, positive_int, seed


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("init", help=help, description=__doc__)
    p.add_argument("--preset", choices=sorted(NETWORK_PRESETS), default="sg2-32", help="architecture (default sg2-32)")
    p.add_argument("--channels", type=positive_int, default=3, help="image channels (default 3)")
    p.add_argument("--c-dim", type=non_negative_int, default=0, help="number of classes, 0 = unconditional")
    p.add_argument("--seed", type=seed, default=0, help="initialisation seed")
    p.add_argument("--out", required=True, type=output_file(".safetensors"), help="output .safetensors path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    g_cfg, d_cfg = network_preset(args.preset, img_channels=args.channels, c_dim=args.c_dim)
    torch.manual_seed(args.seed)
    G = Generator(g_cfg)
    D = Discriminator(d_cfg)
    Network(G_ema=copy.deepcopy(G), G=G, D=D).save(args.out)
    print(f"wrote {args.out} ({args.preset}, seed {args.seed})")

"""Write a freshly initialised network: a starting point, or a demo that needs no download."""

from __future__ import annotations

import argparse
import copy

import torch

from ..io.load import Network
from ..models import stylegan_xl
from ..models.common import Generator
from ..models.registry import NetworkSpec
from ..training.presets import NETWORK_PRESETS, network_preset
from .common import CliError, non_negative_int, output_file, positive_int, seed


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("init", help=help, description=__doc__)
    p.add_argument("--preset", choices=sorted(NETWORK_PRESETS), default="sg2-32",
                   help="architecture (default sg2-32; sg2-*: StyleGAN2 G and D, xl, xl-tiny: a StyleGAN-XL generator)")
    p.add_argument("--channels", type=positive_int, default=3, help="image channels (default 3)")
    p.add_argument("--c-dim", type=non_negative_int, default=0, help="number of classes, 0 = unconditional")
    p.add_argument("--resolution", type=positive_int, default=None,
                   help="StyleGAN-XL: output resolution, grown from the 16² stem by x2 stages of 7 head layers (default 16)")
    p.add_argument("--class-embed", choices=stylegan_xl.CLASS_EMBEDS, default=None,
                   help="StyleGAN-XL: initial class embedding, the official ImageNet one (default; 1000 classes at most) or random")
    p.add_argument("--seed", type=seed, default=0, help="initialisation seed")
    p.add_argument("--out", required=True, type=output_file(".safetensors"), help="output .safetensors path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    family = NETWORK_PRESETS[args.preset].family
    try:
        g_cfg, d_cfg = network_preset(args.preset, img_channels=args.channels, c_dim=args.c_dim, resolution=args.resolution,
                                      class_embed=args.class_embed)
    except ValueError as e:
        raise CliError(f"--preset {args.preset}: {e}") from None
    torch.manual_seed(args.seed)
    G = NetworkSpec(family, "generator", g_cfg).build()
    assert isinstance(G, Generator)
    D = None if d_cfg is None else NetworkSpec(family, "discriminator", d_cfg).build()
    Network(G_ema=copy.deepcopy(G), G=G, D=D).save(args.out)
    nets = "G" if D is None else "G and D"
    print(f"wrote {args.out} ({args.preset}: {family} {nets}, {g_cfg.img_resolution}x{g_cfg.img_resolution}, seed {args.seed})")

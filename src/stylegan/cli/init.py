"""Write a freshly initialised network: a starting point, or a demo that needs no download."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from ..io.load import Network
from ..models import stylegan3, stylegan_xl
from ..models.presets import PRESETS, preset
from ..models.stylegan2 import Discriminator, Generator
from .common import CliError

# StyleGAN-XL generators (no discriminator yet): train.py's sizes (twice StyleGAN3-T's channels, z 64, w 512, a 10-layer
# 16² stem as in the README) and a tiny one for CPU demos and tests.
XL_PRESETS = {
    "xl": dict(channel_base=65536, channel_max=1024, w_dim=512),
    "xl-tiny": dict(channel_base=1024, channel_max=96, w_dim=128),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a freshly initialised checkpoint", description=__doc__)
    p.add_argument("--preset", choices=sorted([*PRESETS, *XL_PRESETS]), default="sg2-32",
                   help="architecture (default sg2-32; xl, xl-tiny: a StyleGAN-XL generator)")
    p.add_argument("--channels", type=int, default=3, help="image channels (default 3)")
    p.add_argument("--c-dim", type=int, default=0, help="number of classes, 0 = unconditional")
    p.add_argument("--resolution", type=int, default=16,
                   help="StyleGAN-XL: output resolution, grown from the 16² stem by x2 stages of 7 head layers (default 16)")
    p.add_argument("--class-embed", choices=stylegan_xl.CLASS_EMBEDS, default="imagenet",
                   help="StyleGAN-XL: initial class embedding, the official ImageNet one (1000 classes at most) or random")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--out", required=True, type=Path, help="output .safetensors path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    if args.preset in XL_PRESETS:
        sizes = dict(XL_PRESETS[args.preset])
        stem = stylegan3.SynthesisConfig(num_layers=10, channel_base=sizes.pop("channel_base"), channel_max=sizes.pop("channel_max"))
        try:
            cfg = stylegan_xl.xl_config(args.resolution, c_dim=args.c_dim, img_channels=args.channels, stem=stem,
                                        class_embed=args.class_embed, **sizes)
        except ValueError as e:
            raise CliError(f"--preset {args.preset}: {e}") from None
        G = stylegan_xl.Generator(cfg)
        Network(G_ema=copy.deepcopy(G), G=G).save(args.out)
        print(f"wrote {args.out} ({args.preset} generator, {cfg.img_resolution}², {len(cfg.layers)} layers, seed {args.seed})")
        return
    g_cfg, d_cfg = preset(args.preset, img_channels=args.channels, c_dim=args.c_dim)
    G = Generator(g_cfg)
    D = Discriminator(d_cfg)
    Network(G_ema=copy.deepcopy(G), G=G, D=D).save(args.out)
    print(f"wrote {args.out} ({args.preset}, seed {args.seed})")

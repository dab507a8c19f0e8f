"""Describe the networks in a checkpoint: family, architecture, resolution, sizes, precision."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from ..io.load import load_network
from ..models import stylegan_xl
from ..models.registry import NetworkSpec


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("info", help=help, description=__doc__)
    p.add_argument("path", help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def describe(net: torch.nn.Module) -> dict[str, Any]:
    spec = NetworkSpec.of(net)
    cfg = spec.config
    out: dict[str, Any] = {
        "family": spec.family,
        "kind": spec.kind,
        "resolution": cfg.img_resolution,
        "img_channels": cfg.img_channels,
        "c_dim": cfg.c_dim,
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    generator = {"z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "num_ws": net.num_ws, "mapping_layers": cfg.mapping.num_layers} \
        if spec.kind == "generator" else {}
    if spec.family == "stylegan3":
        s = cfg.synthesis
        out.update(architecture=_stylegan3_variant(s.conv_kernel, s.use_radial_filters), **generator,
                   channel_base=s.channel_base, channel_max=s.channel_max, num_layers=s.num_layers,
                   conv_kernel=s.conv_kernel, use_radial_filters=s.use_radial_filters,
                   num_fp16_res=s.num_fp16_res, conv_clamp=s.conv_clamp)
    elif spec.family == "stylegan_xl":
        out.update(_stylegan_xl(cfg, generator))
    elif spec.family == "stylegan1":
        s = cfg.synthesis if spec.kind == "generator" else cfg
        out.update(architecture=s.style, channel_base=s.channel_base, channel_max=s.channel_max,
                   lod=float(net.synthesis.lod if spec.kind == "generator" else net.lod))
        out.update(generator or {"mbstd_group_size": cfg.mbstd_group_size})
    elif spec.kind == "generator":
        s = cfg.synthesis
        out.update(architecture=s.architecture, **generator, channel_base=s.channel_base, channel_max=s.channel_max,
                   num_fp16_res=s.num_fp16_res, conv_clamp=s.conv_clamp, fp16_cuda_only=s.fp16_cuda_only)
    else:
        out.update(architecture=cfg.architecture, channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                   num_fp16_res=cfg.num_fp16_res, conv_clamp=cfg.conv_clamp, fp16_cuda_only=cfg.fp16_cuda_only,
                   mbstd_group_size=cfg.mbstd_group_size)
    return out


def _stylegan_xl(cfg: stylegan_xl.GeneratorConfig, generator: dict[str, Any]) -> dict[str, Any]:
    """Architecture, the `generator` sizes, then stages, layers and classes of a StyleGAN-XL generator."""
    layers = cfg.synthesis.layers
    if cfg.history is None:
        stages = "unknown (only the layers are recorded)"
    else:
        steps = [f"stem {cfg.history.stem_resolution}² ({cfg.history.stem.num_layers} layers)"]
        steps += [f"x{s.up_factor} +{s.head_layers} head layers" for s in cfg.history.stages]
        stages = " -> ".join(steps)
    m = cfg.mapping
    return dict(architecture=_stylegan3_variant(layers[0].conv_kernel, layers[0].use_radial_filters).replace("stylegan3", "stylegan_xl"),
                **generator, stages=stages, layers=len(layers), first_layer=layers[0].name, last_layer=layers[-1].name, classes=cfg.c_dim,
                class_embedding=f"{m.embed_classes}x{m.embed_features}", fp16_layers=sum(lc.use_fp16 for lc in layers))


def _stylegan3_variant(conv_kernel: int, radial: bool) -> str:
    """Paper config name: T (3x3 convs, separable filters), R (1x1 convs, radial filters), else custom."""
    return {(3, False): "stylegan3-t", (1, True): "stylegan3-r"}.get((conv_kernel, radial), "stylegan3-custom")


def run(args: argparse.Namespace) -> None:
    net = load_network(args.path)
    report = {"path": args.path, "format": net.source_format, "networks": {k: describe(v) for k, v in net.networks().items()}}
    if "D_not_loaded" in net.extra:
        report["not_loaded"] = net.extra["D_not_loaded"]
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.path}  ({net.source_format})")
    for name, d in report["networks"].items():
        print(f"  {name}: {d['family']} {d['kind']}, {d['architecture']}, {d['resolution']}x{d['resolution']}x{d['img_channels']}, "
              f"{d['parameters']:,} parameters, c_dim={d['c_dim']}")
        extras = {k: v for k, v in d.items() if k not in ("family", "kind", "architecture", "resolution", "img_channels", "parameters", "c_dim")}
        print("    " + ", ".join(f"{k}={v}" for k, v in extras.items()))
    if "not_loaded" in report:
        print(f"  not loaded: {report['not_loaded']}")

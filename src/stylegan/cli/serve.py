"""A local web explorer: seeds and latent drags, truncation, classes, noise, style mixing, StyleGAN3 translate and
rotate, feature maps, projected latents and background projection, in the browser (docs/serve.md)."""

from __future__ import annotations

import argparse
import sys

from .common import CliError, resolve_device

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web explorer of networks (needs the serve extra)", description=__doc__)
    p.add_argument("--network", action="append", default=[], metavar="NET",
                   help="checkpoint to load (.safetensors, official .pkl, rosinality .pt, or folder); repeat for several, "
                        "or load more from the page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--max-upload-mb", type=int, default=32, help="largest accepted upload (images, .npz) in MiB (default 32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..serve.app import create_app
        from ..serve.explorer import Explorer
    except ImportError as e:
        raise CliError(f"the web explorer needs the serve extra: pip install 'stylegan[serve]' ({e})") from None
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: must be 0..65535")
    if args.max_upload_mb < 1:
        raise CliError(f"--max-upload-mb {args.max_upload_mb}: must be >= 1")
    device = resolve_device(args.device)
    explorer = Explorer(device, max_upload=args.max_upload_mb << 20)
    try:
        for path in args.network:
            explorer.load(path)
        if args.host not in LOCAL_HOSTS:
            print(f"warning: --host {args.host} makes the explorer reachable from other machines; it has no "
                  "authentication and loads any network path it is given", file=sys.stderr)
        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(f"stylegan serve: {len(explorer.slots)} network(s) on {device}; open http://{shown}:{args.port}/", file=sys.stderr)
        uvicorn.run(create_app(explorer), host=args.host, port=args.port, log_level="warning")
    finally:
        explorer.close()

"""A local web explorer: seeds and latent drags, truncation, classes, noise, style mixing, StyleGAN3 translate and
rotate, feature maps, projected latents and background projection, in the browser (docs/serve.md)."""

from __future__ import annotations

import argparse
import sys

from .common import CliError, add_device_arg, int_range, positive_int, resolve_device

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("serve", help=help, description=__doc__)
    p.add_argument("--network", action="append", default=[], metavar="NET",
                   help="checkpoint to load (.safetensors, official .pkl, rosinality .pt, or folder); repeat for several, "
                        "or load more from the page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_range(0, 65535), default=7860, help="port (default 7860)")
    add_device_arg(p)
    p.add_argument("--max-upload-mb", type=positive_int, default=32, help="largest accepted upload (images, .npz) in MiB (default 32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..serve.app import create_app
        from ..serve.explorer import Explorer
    except ImportError as e:
        raise CliError(f"the web explorer needs the serve extra: pip install 'stylegan[serve]' ({e})") from None
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

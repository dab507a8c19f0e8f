"""Entry point of the `stylegan` command."""

from __future__ import annotations

import argparse
import sys

from ..io.errors import NetworkLoadError
from . import (analyze, attribute, convert, dataset, export, generate, info, init, metrics, mix, project, samplesheet, serve,
               train, truncation, video)
from .common import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylegan", description="The StyleGAN family in pure PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (init, generate, info, convert, dataset, metrics, train, project, attribute, mix, video, truncation,
                   analyze, samplesheet, serve, export):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[2:] if argv is None else argv[1:])
    try:
        args.func(args)
    except (CliError, NetworkLoadError) as e:
        print(f"stylegan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"stylegan {args.command}: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

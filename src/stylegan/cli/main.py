"""Entry point of the `stylegan` command.

Only the chosen command's module is imported (it builds its own options), so `stylegan --help` and
`stylegan --version` start without torch. Exit status: 0 done; 2 a user error, printed as one line naming the
flag or file (bad flags, unreadable inputs, unwritable outputs, a full disk); 130 interrupted by Ctrl-C; 141
the reader of stdout went away (`stylegan info ... | head`), as for a process stopped by SIGPIPE; 1 an
unexpected error (a bug: the traceback is printed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Collection

from .. import __version__
from ..io.errors import NetworkLoadError
from .common import CliError

# name -> one-line help; each command is the module stylegan.cli.<name> (with its add_parser and run)
COMMANDS = {
    "init": "write a freshly initialised checkpoint",
    "generate": "generate images from seeds",
    "info": "describe the networks in a checkpoint",
    "convert": "convert between checkpoint formats",
    "dataset": "convert images into a training dataset (zip or folder)",
    "metrics": "compute metrics of a generator or an image folder",
    "train": "train a generator",
    "project": "project an image into W / W+ (StyleGAN2 appendix D)",
    "attribute": "project images into W and compare real vs generated distances (StyleGAN2 5.1)",
    "mix": "style mixing matrix of row and column seeds",
    "video": "latent interpolation video (MP4, or GIF without ffmpeg)",
    "truncation": "truncation figure: seeds x psi values",
    "analyze": "the papers' analysis figures (resolution usage, PPL, Jacobian, droplets, spectra)",
    "samplesheet": "sample sheet of a conditional network: one row per class",
    "serve": "web explorer of networks (needs the serve extra)",
    "export": "export a generator as ONNX or TorchScript",
}
EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (`stylegan CMD: error: argument --flag: problem`), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def chosen_command(argv: list[str]) -> str | None:
    """The command named on the command line (its first word), unless a top-level option comes first."""
    for arg in argv:
        if arg.startswith("-"):
            return None
        return arg if arg in COMMANDS else None
    return None


def build_parser(built: Collection[str] = tuple(COMMANDS)) -> ArgumentParser:
    """The parser with every command listed; the options of the commands in `built` are added by their modules."""
    parser = ArgumentParser(prog="stylegan", description="The StyleGAN family in pure PyTorch.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for name, text in COMMANDS.items():
        if name in built:
            importlib.import_module(f"{__package__}.{name}").add_parser(sub, text)
        else:
            sub.add_parser(name, help=text)
    return parser


def _error(args: argparse.Namespace, message: str) -> int:
    print(f"stylegan {args.command}: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = chosen_command(words)
    try:
        args = build_parser([command] if command else []).parse_args(words)
    except SystemExit as e:  # --help, --version, a bad flag: argparse has said what it had to say
        return int(e.code or 0)
    args.argv = words[1:]
    from ..data.common import DatasetError  # after parsing: `stylegan.data` loads torch

    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except (CliError, NetworkLoadError, DatasetError) as e:
        return _error(args, str(e))
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to say to a reader that left
        return EXIT_BROKEN_PIPE
    except OSError as e:
        return _error(args, f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e))
    except KeyboardInterrupt:
        print(f"stylegan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())

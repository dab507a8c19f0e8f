"""Convert images into a training dataset: a zip or folder of PNGs plus dataset.json (NVIDIA's layout).

sources:
  PATH/                          a folder of png, jpg, webp, bmp, tiff images (recursive)
  PATH.zip                       a zip of images
  train-images-idx3-ubyte[.gz]   MNIST-style IDX (labels from ...-labels-idx1-ubyte)
  cifar-10-python.tar.gz         CIFAR-10 (or CIFAR-100) python tarball
  builtin:fashion-mnist          the 60k training split where Debian's dataset-fashion-mnist
                                 is installed, else the bundled 10k test split
  builtin:fashion-mnist-test     always the bundled 10k test split

Every image is checked: the first bad one stops the run with its name and the problem,
unless --skip-bad is given. The output appears at --dest only when complete.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from types import FrameType

from ..data import ConvertConfig, DatasetError, convert_dataset
from ..data.tool import RESIZE_FILTERS, TRANSFORMS
from .common import CliError, positive_int


def parse_resolution(text: str) -> tuple[int, int]:
    """'256x256' or '256' -> (256, 256) (an argparse `type`)."""
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip().lower())
    if not m or int(m.group(1)) < 1 or int(m.group(2) or m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"bad resolution {text!r}: expected WxH, e.g. 256x256")
    return int(m.group(1)), int(m.group(2) or m.group(1))


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("dataset", help=help, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="folder, .zip, IDX file, CIFAR tarball, or builtin:fashion-mnist")
    p.add_argument("--dest", required=True, help="output: a path ending in .zip, or a new or empty folder")
    p.add_argument("--resolution", type=parse_resolution, default=None, metavar="WxH",
                   help="output size (default: the images' own, which must all agree)")
    p.add_argument("--transform", choices=TRANSFORMS, default="none",
                   help="none scales to WxH; center-crop crops the central square first; center-crop-wide crops to "
                        "the W:H aspect and letterboxes into WxW (default none)")
    p.add_argument("--resize-filter", choices=tuple(RESIZE_FILTERS), default="lanczos", help="default lanczos")
    p.add_argument("--max-images", type=positive_int, default=None, metavar="N", help="write at most N images")
    p.add_argument("--labels", choices=("auto", "folders", "none"), default="auto",
                   help="auto: dataset.json in the source (or the IDX/CIFAR labels); folders: one class per "
                        "top-level sub-folder; none (default auto)")
    p.add_argument("--channels", choices=("auto", "1", "3"), default="auto",
                   help="auto: 1 if every image is grayscale, else 3 (default auto)")
    p.add_argument("--skip-bad", action="store_true", help="skip unusable files and list them, instead of stopping")
    p.set_defaults(func=run)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (kill, job schedulers), unwound like Ctrl-C so that the temporary output is removed."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def run(args: argparse.Namespace) -> None:
    cfg = ConvertConfig(source=args.source, dest=args.dest, resolution=args.resolution, transform=args.transform,
                        resize_filter=args.resize_filter, max_images=args.max_images, labels=args.labels,
                        channels=None if args.channels == "auto" else int(args.channels), skip_bad=args.skip_bad)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        report = convert_dataset(cfg, log=print)
    except DatasetError as e:
        raise CliError(str(e)) from None
    except KeyboardInterrupt as e:
        print(f"stylegan dataset: interrupted; {args.dest} was left untouched", file=sys.stderr)
        raise SystemExit(128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    for line in report.summary():
        print(line)

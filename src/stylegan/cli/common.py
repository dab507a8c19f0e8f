"""Helpers shared by the sub-commands: argument types, devices, seeds, labels, images, projection options.

Every flag is checked while the command line is parsed (the argparse `type`s below), so a bad value is one
line naming the flag, exit status 2, before any file or folder is touched. Importing this module is cheap
(no torch): the parsers of all commands and `stylegan --help` load it, the functions import what they use.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from ..models.common import Generator
    from ..training.distributed import DistEnv


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- argument types

SEED_LIMIT = 2**32  # seeds go to NumPy's RandomState (NVIDIA's z), which takes [0, 2^32)
MAX_LIST = 1_000_000  # numbers one list flag may expand to ('0-999999')


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None


def _bounds(lo: float | None, hi: float | None, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    return f"{'>' if lo_open else '>='} {lo}" if lo is not None else f"<= {hi}"


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number in [lo, hi] (None: unbounded)."""
    def parse(text: str) -> int:
        value = int(_number(text, int))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi, False)}, got {value}")
        return value
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite number in [lo, hi], or (lo, hi] with `lo_open` (None: unbounded)."""
    def parse(text: str) -> float:
        value = float(_number(text, float))
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (lo is not None and (value < lo or (lo_open and value == lo))) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi, lo_open)}, got {value:g}")
        return value
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
finite_float = float_range()
positive_float = float_range(0, lo_open=True)
non_negative_float = float_range(0)
probability = float_range(0, 1)
seed = int_range(0, SEED_LIMIT - 1)


def parse_int_list(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (an argparse `type`)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise argparse.ArgumentTypeError(f"bad number list {text!r}: {part!r} is not N or A-B")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise argparse.ArgumentTypeError(f"bad range {part!r}: end before start")
        if len(out) + hi - lo + 1 > MAX_LIST:
            raise argparse.ArgumentTypeError(f"{text!r} holds more than {MAX_LIST:,} numbers; split the work over several runs")
        out.extend(range(lo, hi + 1))
    return out


def parse_seed_list(text: str) -> list[int]:
    """Seeds as `parse_int_list` reads them, each in [0, 2^32) (an argparse `type`)."""
    seeds = parse_int_list(text)
    too_big = [s for s in seeds if s >= SEED_LIMIT]
    if too_big:
        raise argparse.ArgumentTypeError(f"seed {too_big[0]} out of range: seeds are 0 .. {SEED_LIMIT - 1} (2^32 - 1)")
    return seeds


def parse_float_pair(text: str, lo: float | None = None) -> tuple[float, float]:
    """'0.25,0' -> (0.25, 0.0), finite numbers (>= lo if given) (an argparse `type`)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated numbers, got {text!r}")
    check = float_range(lo)
    a, b = check(parts[0].strip()), check(parts[1].strip())
    return a, b


def non_negative_pair(text: str) -> tuple[float, float]:
    """`parse_float_pair` with both numbers >= 0 (an argparse `type`)."""
    return parse_float_pair(text, lo=0)


def parse_float_list(text: str) -> list[float]:
    """'-1,-0.5,0,0.7' -> [-1.0, -0.5, 0.0, 0.7], finite numbers (an argparse `type`)."""
    return [finite_float(part.strip()) for part in text.split(",")]


def parse_bool(text: str) -> bool:
    """'1/true/yes/on' or '0/false/no/off' (an argparse `type`, as NVIDIA's `--mirror=1`)."""
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false), got {text!r}")


def device_name(text: str) -> str:
    """'auto', or a device this PyTorch can use: cpu, cuda, cuda:N or mps (an argparse `type`)."""
    if text == "auto":
        return text
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: CUDA is not available (PyTorch {torch.__version__} on this machine); "
                                             "use --device cpu, or install a CUDA build of PyTorch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError(f"{text}: Apple MPS is not available on this machine")
    elif dev.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text}: not supported; use auto, cpu, cuda, cuda:N or mps")
    return text


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """An argparse `type`: a path ending in one of `suffixes` (the format written there)."""
    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text}: expected a {' or '.join(suffixes)} file")
        return path
    return parse


def existing_path(*names: str) -> Callable[[str], str]:
    """An argparse `type`: an existing file or folder, or one of `names` (e.g. an installed package's name)."""
    def parse(text: str) -> str:
        if text not in names and not Path(text).exists():
            raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
        return text
    return parse


def power_of_two(text: str) -> int:
    """An argparse `type`: a resolution, a power of two from 4 to 8192."""
    value = int(_number(text, int))
    if value < 4 or value > 8192 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two between 4 and 8192, got {value}")
    return value


def add_device_arg(p: argparse.ArgumentParser, help: str = "auto, cpu, cuda, cuda:N or mps (default auto)") -> None:
    """The `--device` flag, checked against what this PyTorch has."""
    p.add_argument("--device", type=device_name, default="auto", help=help)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; other names were checked by `device_name`."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device_name(name))


def resolve_data(spec: str, env: DistEnv, resolution: int | None = None, rgb: bool = False) -> str:
    """A dataset path; `builtin:NAME` is converted once into the cache (by rank 0) and reused — at `resolution`
    and in RGB when asked (StyleGAN-XL's stages)."""
    if not spec.startswith("builtin:"):
        return spec
    from ..data.tool import ConvertConfig, convert_dataset
    from ..io.cache import cache_dir

    name = spec.removeprefix("builtin:") + (f"-{resolution}" if resolution else "") + ("-rgb" if rgb else "")
    dest = cache_dir() / "datasets" / f"{name}.zip"
    if env.rank == 0 and not dest.exists():
        print(f"converting {spec} into {dest} (once)", file=sys.stderr)
        convert_dataset(ConvertConfig(source=spec, dest=dest, resolution=(resolution, resolution) if resolution else None,
                                      channels=3 if rgb else None), log=lambda s: None)
    env.broadcast_object(None)  # the others wait for rank 0
    return str(dest)


# ----------------------------------------------------------------------------- latents, labels, images


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """z = RandomState(seed).randn(1, z_dim), as NVIDIA's tools draw it."""
    import numpy as np

    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


PER_SEED_CLASS = "class label of a conditional network (StyleGAN-XL: default one class drawn per seed)"


def add_class_arg(p: argparse.ArgumentParser, help: str = "class label of a conditional network") -> None:
    """The `--class` flag of commands that sample a conditional network."""
    p.add_argument("--class", dest="class_idx", type=non_negative_int, default=None, help=help)


def check_class(c_dim: int, class_idx: int | None) -> None:
    """--class must be absent for unconditional networks and in range for conditional ones (CliError otherwise)."""
    if c_dim == 0 and class_idx is not None:
        raise CliError(f"--class {class_idx}: this network is unconditional (c_dim=0)")
    if class_idx is not None and not 0 <= class_idx < c_dim:
        raise CliError(f"--class {class_idx}: out of range, this network has {c_dim} classes (0..{c_dim - 1})")


def class_label(c_dim: int, class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    """The one-hot label [1, c_dim] of `--class`, None for an unconditional network; a CliError names a missing or bad class."""
    from ..editing.sampling import one_hot

    check_class(c_dim, class_idx)
    if c_dim == 0:
        return None
    if class_idx is None:
        raise CliError(f"this network is conditional (c_dim={c_dim}): pass --class K with 0 <= K < {c_dim}")
    return one_hot([class_idx], c_dim, device)


def seed_labels(G: Generator, seeds: list[int], class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    """[len(seeds), c_dim] labels: --class for every seed; without it, StyleGAN-XL networks draw a class per seed
    (`editing.sampling.seed_classes`, as its tools do) and other conditional networks need --class."""
    import numpy as np

    from ..editing.sampling import one_hot, seed_classes
    from ..models import stylegan_xl

    if isinstance(G, stylegan_xl.Generator) and G.c_dim > 0 and class_idx is None:
        return one_hot(np.concatenate([seed_classes(s, G.c_dim) for s in seeds]), G.c_dim, device)
    c = class_label(G.c_dim, class_idx, device)
    return None if c is None else c.expand(len(seeds), -1)


def centroids_arg(path: Path | None, G: Generator) -> torch.Tensor | None:
    """The --centroids file for `G` (None without one); a bad file is a CliError."""
    from ..editing.latents import LatentFileError
    from ..editing.sampling import load_centroids

    if path is None:
        return None
    try:
        return load_centroids(path, G.w_dim)
    except LatentFileError as e:
        raise CliError(f"--centroids {e}") from None


def check_trunc_cutoff(cutoff: int | None, G: Generator) -> None:
    """`--trunc-cutoff N` must name a prefix of G's ws."""
    if cutoff is not None and cutoff > G.num_ws:
        raise CliError(f"--trunc-cutoff {cutoff}: must be between 0 and num_ws={G.num_ws}")


def to_pil(arr: np.ndarray) -> Image.Image:
    """HWC uint8 array -> a grayscale, RGB or RGBA image; other channel counts are a CliError."""
    from PIL import Image

    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    if arr.shape[2] in (3, 4):
        return Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    raise CliError(f"cannot save {arr.shape[2]}-channel images as PNG (use --raw)")


# ----------------------------------------------------------------------------- projection (`project`, `attribute`)


def add_projection_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `project` and `attribute`."""
    from ..editing.projection import DISTANCES

    p.add_argument("--num-steps", type=positive_int, default=None, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=seed, default=303, help="seed of the initial noise maps and of the w noise (default 303)")
    p.add_argument("--noise-reg", type=non_negative_float, default=1e5, help="weight of the noise autocorrelation penalty (default 1e5)")
    p.add_argument("--distance", choices=DISTANCES, default="lpips",
                   help="lpips (LPIPS-VGG16, the paper's; needs the VGG16 weights) or mse (pixel MSE, not LPIPS)")
    p.add_argument("--vgg16", action="append", type=Path, default=None, metavar="PATH",
                   help="VGG16 + LPIPS weights (torchvision vgg16-397923af.pth and LPIPS vgg.pth; repeat the flag for each "
                        "file); default: the cache, downloaded when missing")
    add_class_arg(p)
    add_device_arg(p)


def metric_name(distance: str) -> str:
    """How outputs name the distance."""
    return "LPIPS (VGG16)" if distance == "lpips" else "pixel MSE in [-1, 1] units (not LPIPS)"


def load_target(path: Path, G: Generator) -> np.ndarray:
    """Image file -> HWC uint8 with G's channels, centre-cropped to a square and Lanczos-resized to G's resolution."""
    from PIL import Image, UnidentifiedImageError

    from ..editing.projection import image_to_target

    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CliError(f"{path}: cannot read this image ({e})".replace("\n", " ")) from None
    try:
        return image_to_target(img, G.img_channels, G.img_resolution)
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None


def uint8_to_target(arr: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> [C, H, W] float32 in [-1, 1]."""
    import torch

    from ..io.images import from_uint8

    return from_uint8(torch.from_numpy(arr).permute(2, 0, 1))


def load_vgg(args: argparse.Namespace, device: torch.device, command: str) -> torch.nn.Module | None:
    """The LPIPS VGG16 for --distance lpips (None for mse); a one-line CliError when its weights cannot be loaded."""
    if args.distance != "lpips":
        return None
    from ..metrics.detectors import DetectorUnavailable
    from ..metrics.vgg import load_vgg16
    try:
        return load_vgg16(args.vgg16, lpips=True, device=device, what=f"stylegan {command} --distance lpips")
    except DetectorUnavailable as e:
        raise CliError(f"LPIPS needs the VGG16 + LPIPS weights, which cannot be loaded: {e}. Pass them with "
                       "--vgg16 PATH (repeatable), or use --distance mse (pixel MSE, not LPIPS)") from None

"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..data.tool import ConvertConfig, convert_dataset
from ..editing.latents import LatentFileError
from ..editing.projection import DISTANCES
from ..editing.sampling import load_centroids, one_hot, seed_classes
from ..io.cache import cache_dir
from ..io.images import from_uint8
from ..metrics.detectors import DetectorUnavailable
from ..models import stylegan_xl
from ..models.common import Generator
from ..training.distributed import DistEnv


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


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
        out.extend(range(lo, hi + 1))
    return out


def parse_float_pair(text: str) -> tuple[float, float]:
    """'0.25,0' -> (0.25, 0.0) (an argparse `type`)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected two comma-separated numbers, got {text!r}")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; explicit names must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: CUDA is not available in this PyTorch build/machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise CliError("--device mps: Apple MPS is not available")
    return dev


def parse_bool(text: str) -> bool:
    """'1/true/yes/on' or '0/false/no/off' (an argparse `type`, as NVIDIA's `--mirror=1`)."""
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false), got {text!r}")


def resolve_data(spec: str, env: DistEnv) -> str:
    """A dataset path; `builtin:NAME` is converted once into the cache (by rank 0) and reused."""
    if not spec.startswith("builtin:"):
        return spec
    dest = cache_dir() / "datasets" / f"{spec.removeprefix('builtin:')}.zip"
    if env.rank == 0 and not dest.exists():
        print(f"converting {spec} into {dest} (once)", file=sys.stderr)
        convert_dataset(ConvertConfig(source=spec, dest=dest), log=lambda s: None)
    env.broadcast_object(None)  # the others wait for rank 0
    return str(dest)


# ----------------------------------------------------------------------------- latents, labels, images


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """z = RandomState(seed).randn(1, z_dim), as NVIDIA's tools draw it."""
    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


def check_class(c_dim: int, class_idx: int | None) -> None:
    """--class must be absent for unconditional networks and in range for conditional ones (CliError otherwise)."""
    if c_dim == 0 and class_idx is not None:
        raise CliError(f"--class {class_idx}: this network is unconditional (c_dim=0)")
    if class_idx is not None and not 0 <= class_idx < c_dim:
        raise CliError(f"--class {class_idx}: out of range, this network has {c_dim} classes (0..{c_dim - 1})")


def class_label(c_dim: int, class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    """The one-hot label [1, c_dim] of `--class`, None for an unconditional network; a CliError names a missing or bad class."""
    check_class(c_dim, class_idx)
    if c_dim == 0:
        return None
    if class_idx is None:
        raise CliError(f"this network is conditional (c_dim={c_dim}): pass --class K with 0 <= K < {c_dim}")
    return one_hot([class_idx], c_dim, device)


def seed_labels(G: Generator, seeds: list[int], class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    """[len(seeds), c_dim] labels: --class for every seed; without it, StyleGAN-XL networks draw a class per seed
    (`editing.sampling.seed_classes`, as its tools do) and other conditional networks need --class."""
    if isinstance(G, stylegan_xl.Generator) and G.c_dim > 0 and class_idx is None:
        return one_hot(np.concatenate([seed_classes(s, G.c_dim) for s in seeds]), G.c_dim, device)
    c = class_label(G.c_dim, class_idx, device)
    return None if c is None else c.expand(len(seeds), -1)


def centroids_arg(path: Path | None, G: Generator) -> torch.Tensor | None:
    """The --centroids file for `G` (None without one); a bad file is a CliError."""
    if path is None:
        return None
    try:
        return load_centroids(path, G.w_dim)
    except LatentFileError as e:
        raise CliError(f"--centroids {e}") from None


def to_pil(arr: np.ndarray) -> Image.Image:
    """HWC uint8 array -> a grayscale, RGB or RGBA image; other channel counts are a CliError."""
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    if arr.shape[2] in (3, 4):
        return Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    raise CliError(f"cannot save {arr.shape[2]}-channel images as PNG (use --raw)")


# ----------------------------------------------------------------------------- projection (`project`, `attribute`)

_8BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
_MODES_FOR = {1: _8BIT_MODES, 3: _8BIT_MODES, 4: ("RGBA", "LA", "PA")}  # image modes that convert to G's channels


def add_projection_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `project` and `attribute`."""
    p.add_argument("--num-steps", type=int, default=None, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=int, default=303, help="seed of the initial noise maps and of the w noise (default 303)")
    p.add_argument("--noise-reg", type=float, default=1e5, help="weight of the noise autocorrelation penalty (default 1e5)")
    p.add_argument("--distance", choices=DISTANCES, default="lpips",
                   help="lpips (LPIPS-VGG16, the paper's; needs the VGG16 weights) or mse (pixel MSE, not LPIPS)")
    p.add_argument("--vgg16", action="append", type=Path, default=None, metavar="PATH",
                   help="VGG16 + LPIPS weights (torchvision vgg16-397923af.pth and LPIPS vgg.pth; repeat the flag for each "
                        "file); default: the cache, downloaded when missing")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class label of a conditional network")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")


def metric_name(distance: str) -> str:
    """How outputs name the distance."""
    return "LPIPS (VGG16)" if distance == "lpips" else "pixel MSE in [-1, 1] units (not LPIPS)"


def load_target(path: Path, G: Generator) -> np.ndarray:
    """Image file -> HWC uint8 with G's channels, centre-cropped to a square and Lanczos-resized to G's resolution."""
    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CliError(f"{path}: cannot read this image ({e})".replace("\n", " ")) from None
    channels = G.img_channels
    if img.mode not in _MODES_FOR.get(channels, ()):
        raise CliError(f"{path}: a {img.mode} image cannot be matched to the network's {channels} channel(s)")
    img = img.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])  # RGB -> L for 1-channel networks, alpha dropped for RGB
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((G.img_resolution, G.img_resolution), Image.LANCZOS)
    arr = np.array(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def uint8_to_target(arr: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> [C, H, W] float32 in [-1, 1]."""
    return from_uint8(torch.from_numpy(arr).permute(2, 0, 1))


def load_vgg(args: argparse.Namespace, device: torch.device, command: str) -> torch.nn.Module | None:
    """The LPIPS VGG16 for --distance lpips (None for mse); a one-line CliError when its weights cannot be loaded."""
    if args.distance != "lpips":
        return None
    from ..metrics.vgg import load_vgg16
    try:
        return load_vgg16(args.vgg16, lpips=True, device=device, what=f"stylegan {command} --distance lpips")
    except DetectorUnavailable as e:
        raise CliError(f"LPIPS needs the VGG16 + LPIPS weights, which cannot be loaded: {e}. Pass them with "
                       "--vgg16 PATH (repeatable), or use --distance mse (pixel MSE, not LPIPS)") from None


def check_projection_args(args: argparse.Namespace) -> None:
    """One-line CliErrors for out-of-range projection options."""
    if args.num_steps is not None and args.num_steps < 1:
        raise CliError(f"--num-steps {args.num_steps}: must be >= 1")
    if not args.noise_reg >= 0:
        raise CliError(f"--noise-reg {args.noise_reg}: must be >= 0")

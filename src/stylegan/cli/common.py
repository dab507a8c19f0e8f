"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import re
import sys

import torch

from ..data.tool import ConvertConfig, convert_dataset
from ..io.cache import cache_dir
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

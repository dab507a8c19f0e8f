"""Weight files fetched once into the user cache, checked by SHA-256 (a full digest or torch.hub's file-name
prefix), written through a temporary file so nothing half-downloaded is ever left at the final path."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import temp_file_beside


class WeightsUnavailable(Exception):
    """Weights cannot be had; the message (one line) says which file to fetch and where to put it."""


@dataclass(frozen=True)
class WeightsFile:
    """A weights file fetched into the cache: its name there, its URL, and its SHA-256 (the whole hex digest, or a
    prefix of at least 8 digits as torch.hub-style file names carry it, e.g. `...-df68dfff.pth`)."""

    filename: str
    url: str
    sha256: str

    def matches(self, digest: str) -> bool:
        return len(self.sha256) >= 8 and digest.startswith(self.sha256)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_url(url: str, dest: Path) -> None:
    """Download `url` to `dest` (the network step; tests replace it)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


Fetch = Callable[[str, Path], None]


def download_checked(file: WeightsFile, dest: Path, error: type[Exception] = WeightsUnavailable,
                     fetch: Fetch | None = None) -> None:
    """Fetch `file` to `dest` through a temporary file, checking its sha256 (`error` on a mismatch)."""
    tmp = temp_file_beside(dest)
    try:
        (fetch or fetch_url)(file.url, tmp)
        digest = file_sha256(tmp)
        if not file.matches(digest):
            raise error(f"{file.url}: sha256 {digest} is not the expected {file.sha256}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_weights(files: Sequence[WeightsFile], what: str, cache: Path, error: type[Exception] = WeightsUnavailable,
                  fetch: Fetch | None = None, download: bool = True) -> list[Path]:
    """Paths of `files` in the folder `cache`, downloaded (sha256-checked) where missing.

    Raises `error`, in one line, when a cached file has the wrong hash or a download fails (offline, or
    `download=False`): the message names every missing file's URL and where to put it.
    """
    paths, missing, reason = [], [], "downloads are off"
    for file in files:
        path = cache / file.filename
        if not path.is_file():
            if not download:
                missing.append(file)
                continue
            try:
                download_checked(file, path, error, fetch)
            except OSError as e:  # urllib.error.URLError and timeouts included
                missing.append(file)
                reason = str(getattr(e, "reason", e))
                continue
        elif not file.matches(file_sha256(path)):
            raise error(f"{path}: sha256 is not {file.sha256}; delete it, or fetch {file.url} again to that path")
        paths.append(path)
    if missing:
        wanted = " and ".join(f"{f.url} as {cache / f.filename}" for f in missing)
        raise error(f"{what} needs weights it cannot download ({reason}): fetch {wanted}")
    return paths


def read_state_dict(path: Path, error: type[Exception] = WeightsUnavailable, unwrap: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict of tensors from a safetensors file or a torch file (read with `weights_only=True`); with
    `unwrap`, a dict holding the state dict under that key (as DeiT's release files do) is accepted too."""
    if path.suffix == ".safetensors":
        import safetensors.torch
        return safetensors.torch.load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for files it cannot read
        raise error(f"{path}: not a readable weights file ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if unwrap is not None and isinstance(data, dict) and isinstance(data.get(unwrap), dict):
        data = data[unwrap]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise error(f"{path}: expected a state dict of tensors")
    return data

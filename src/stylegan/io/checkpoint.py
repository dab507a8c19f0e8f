"""Native checkpoints: one safetensors file holding every network's tensors (`G.*`, `G_ema.*`, `D.*`)
and, in its metadata, the JSON configs and a SHA-256 of the whole content. Written atomically: temp file,
fsync, rename."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

FORMAT = "stylegan"
FORMAT_VERSION = "1"


def process_umask() -> int:
    """The process umask, read without changing it where /proc allows (`os.umask` can only read it by
    setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _about(path: Path, e: OSError) -> OSError:
    """`e` naming `path` (the file the caller asked for), not the hidden temporary the error happened on."""
    return OSError(e.errno, e.strerror, str(path)) if e.errno is not None else e


def _mkstemp_beside(path: Path, suffix: str) -> tuple[int, str]:
    """A new temporary file in `path`'s folder (so that `os.replace` onto `path` is atomic) with the mode a
    plain `open(path, "w")` would give it: 0o666 minus the umask (`mkstemp` alone makes it 0o600).
    Errors name `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise _about(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~process_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def temp_file_beside(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """An empty temporary file next to `path`, for writers that produce the file themselves before an
    `os.replace(tmp, path)`; its mode respects the umask."""
    fd, tmp = _mkstemp_beside(Path(path), suffix)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one; the new file
    gets the usual permissions (0o666 minus the umask). An OSError (no space, read-only) names `path`."""
    path = Path(path)
    fd, tmp = _mkstemp_beside(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a read-only folder: the old file stays, the temporary goes
        Path(tmp).unlink(missing_ok=True)
        raise _about(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # the rename itself durable
        try:
            dir_fd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise _about(path, e) from None


AUX_PREFIX = "_aux."  # tensors that belong to no network (training state: optimizer moments, ...)
Networks = dict[str, tuple[dict[str, Any], dict[str, torch.Tensor]]]


def content_digest(meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a checkpoint's metadata and tensors (names, dtypes, shapes, bytes), stored in its metadata as
    `sha256`: a truncated file fails to open, a flipped byte anywhere fails this check."""
    h = hashlib.sha256()
    for key in sorted(meta):
        if key != "sha256":
            h.update(f"{key}\0{meta[key]}\0".encode())
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(f"{key}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, networks: Networks, extra: dict[str, Any] | None = None,
                    aux: dict[str, torch.Tensor] | None = None) -> None:
    """Save `{name: (spec, state_dict)}`; `spec` is JSON data describing how to rebuild the network.
    `aux` tensors are stored under `_aux.NAME` and read back with `read_snapshot` / `read_aux_tensors`."""
    tensors: dict[str, torch.Tensor] = {f"{AUX_PREFIX}{key}": value.detach().to("cpu").contiguous().clone() for key, value in (aux or {}).items()}
    for name, (_, state) in networks.items():
        for key, value in state.items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").contiguous().clone()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "networks": json.dumps({name: spec for name, (spec, _) in networks.items()}),
        "extra": json.dumps(extra or {}),
    }
    meta["sha256"] = content_digest(meta, tensors)
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata=meta))


def read_snapshot(path: str | os.PathLike) -> tuple[Networks, dict[str, Any], dict[str, torch.Tensor]]:
    """Inverse of `save_checkpoint`: ({name: (spec, state_dict)}, extra, aux). ValueError for a file that is not a
    stylegan checkpoint, is cut short or fails its checksum (checkpoints written before the checksum have none)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError("not a stylegan checkpoint (safetensors metadata lacks format=stylegan)")
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unsupported checkpoint format_version {meta.get('format_version')!r}")
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except SafetensorError as e:
        raise ValueError(f"corrupt safetensors file: {e}") from None
    if "sha256" in meta and content_digest(meta, tensors) != meta["sha256"]:
        raise ValueError("corrupt checkpoint: its content does not match its checksum (damaged on disk or in transfer)")
    try:
        specs, extra = json.loads(meta["networks"]), json.loads(meta.get("extra", "{}"))
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"corrupt checkpoint metadata ({e})") from None
    states: dict[str, dict[str, torch.Tensor]] = {name: {} for name in specs}
    aux = {}
    for key, value in tensors.items():
        if key.startswith(AUX_PREFIX):
            aux[key.removeprefix(AUX_PREFIX)] = value
            continue
        name, _, rest = key.partition(".")
        if name not in states:
            raise ValueError(f"tensor {key!r} belongs to no network in the checkpoint")
        states[name][rest] = value
    return {name: (specs[name], states[name]) for name in specs}, extra, aux


def read_checkpoint(path: str | os.PathLike) -> tuple[Networks, dict[str, Any]]:
    """Inverse of `save_checkpoint`: ({name: (spec, state_dict)}, extra)."""
    nets, extra, _ = read_snapshot(path)
    return nets, extra


def read_aux_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The `aux` tensors of a native checkpoint (empty for one saved without)."""
    return read_snapshot(path)[2]

"""A `stylegan` process with faults injected at precise points of its own progress (test-only; the product has no
hooks for this). Run as

    python tests/faults/inject.py FAULTS_JSON stylegan-arguments...

FAULTS_JSON is a list of faults, each {"at": EVENT, "n": N, "do": ACTION, ...}: when EVENT happens for the N-th time
in this process (1-based), ACTION runs.

events:
  minibatch         a training minibatch finished (Trainer._step returned)
  phase             a phase of a minibatch accumulated its gradients (mid-minibatch)
  tick_line         a tick's line was appended to stats.jsonl
  snapshot_write    a snapshot's bytes are about to be written (inside the atomic write)
  snapshot_rename   a snapshot's temporary is complete and about to be renamed into place
  snapshot_renamed  a snapshot was renamed into place (the folder not yet synced)
  prune             between writing a snapshot and pruning the old ones
  pruned_one        one old snapshot was deleted by the pruning
  png_write         a PNG's bytes are about to be written (inside the atomic write)
  stats_rewrite     stats.jsonl is about to be rewritten (a resume dropping the lines after its snapshot)

actions:
  kill              SIGKILL this process (at a write event: after writing half the bytes into the hidden temporary)
  sigint            SIGINT this process (a Ctrl-C)
  enospc / erofs    fail the write with "No space left on device" / "Read-only file system"
  nan_loss          (at minibatch) the next minibatch's discriminator logits are NaN
  nan_weights       (at minibatch) one weight of G becomes NaN
  pause             sleep "seconds" (another process can act meanwhile)
  bad_image         the "after"-th image read from then on fails to decode; a DataLoader worker forked afterwards
                    counts its own reads

With STYLEGAN_FAULTS_RECORD=FILE, every snapshot written appends a line {"name", "digest", "finite"} to FILE: the
digest of its tensors (`content_digest` without metadata) and whether they are all finite.

Every event is also printed to stderr as "@event N" (flushed), so a test can see how far a process got. Two test
speed-ups that change nothing under test: the reals/fakes grids are 4x2 images instead of up to 16x16.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import safetensors.torch
import torch

from stylegan.cli.main import main
from stylegan.data import dataset
from stylegan.data.common import DatasetError
from stylegan.io import checkpoint, images, runs
from stylegan.training import loop, loss

FAULTS = json.loads(sys.argv[1])
COUNTS: Counter[str] = Counter()
NAN_NEXT: list[str] = []  # NaN to inject into the next minibatch
BAD_IMAGE: list[int] = []  # reads to go until one fails


def event(name: str, **context: object) -> str | None:
    """Count `name`; run the fault due now, if any (returns its action when the caller must act on it)."""
    COUNTS[name] += 1
    print(f"@{name} {COUNTS[name]}", file=sys.stderr, flush=True)
    for fault in FAULTS:
        if fault["at"] == name and fault["n"] == COUNTS[name]:
            action = fault["do"]
            if action == "kill" and "data" not in context:
                os.kill(os.getpid(), signal.SIGKILL)
            if action == "sigint":
                os.kill(os.getpid(), signal.SIGINT)
            if action in ("enospc", "erofs") and "data" not in context:
                raise _error(action)
            if action in ("nan_loss", "nan_weights"):
                NAN_NEXT.append(action)
            if action == "bad_image":
                BAD_IMAGE.append(fault["after"])
            if action == "pause":
                time.sleep(fault["seconds"])
            return action
    return None


def _error(action: str, filename: str | None = None) -> OSError:
    code = errno.ENOSPC if action == "enospc" else errno.EROFS
    return OSError(code, os.strerror(code), filename)


def _atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    name = Path(path).name
    kind = "snapshot_write" if runs.SNAPSHOT_RE.fullmatch(name) else "png_write" if name.endswith(".png") else \
        "stats_rewrite" if name == "stats.jsonl" else None
    action = event(kind, data=data) if kind is not None else None
    if kind == "snapshot_write" and os.environ.get("STYLEGAN_FAULTS_RECORD"):
        tensors = safetensors.torch.load(data)
        line = {"name": name, "digest": checkpoint.content_digest({}, tensors), "finite": all(t.isfinite().all() for t in tensors.values())}
        with open(os.environ["STYLEGAN_FAULTS_RECORD"], "a") as f:
            f.write(json.dumps(line) + "\n")
    if action == "kill":
        fd, _ = checkpoint._mkstemp_beside(Path(path), ".tmp")  # what a process killed mid-write leaves behind
        os.write(fd, data[: len(data) // 2])
        os.fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    if action in ("enospc", "erofs"):
        # Fail inside the real write, where the system would: a full disk when the data is flushed, a read-only
        # folder when the temporary is created.
        def fail(*args: object, **kwargs: object) -> None:
            raise _error(action, f"{Path(path).parent}/.{name}.x1y2z3w4.tmp")

        target, attr = (os, "fsync") if action == "enospc" else (tempfile, "mkstemp")
        real = getattr(target, attr)
        setattr(target, attr, fail)
        try:
            _real_atomic_write_bytes(path, data)
        finally:
            setattr(target, attr, real)
        return
    _real_atomic_write_bytes(path, data)


def _replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    snapshot = runs.SNAPSHOT_RE.fullmatch(Path(dst).name) is not None
    if snapshot:
        event("snapshot_rename")
    _real_replace(src, dst)
    if snapshot:
        event("snapshot_renamed")


def _unlink(self: Path, missing_ok: bool = False) -> None:
    _real_unlink(self, missing_ok=missing_ok)
    if runs.SNAPSHOT_RE.fullmatch(self.name):
        event("pruned_one")


def _prune(self: loop.Trainer) -> None:
    event("prune")
    _real_prune(self)


def _step(self: loop.Trainer, real_img: torch.Tensor, real_c: torch.Tensor) -> None:
    if "nan_weights" in NAN_NEXT:
        NAN_NEXT.remove("nan_weights")
        with torch.no_grad():
            next(self.G.parameters()).view(-1)[0] = float("nan")
    _real_step(self, real_img, real_c)
    event("minibatch")


def _accumulate(self: loss.StyleGAN2Loss, *args: object, **kwargs: object) -> None:
    _real_accumulate(self, *args, **kwargs)
    event("phase")


def _run_D(self: loss.StyleGAN2Loss, *args: object, **kwargs: object) -> torch.Tensor:
    logits = _real_run_D(self, *args, **kwargs)
    if "nan_loss" in NAN_NEXT:
        NAN_NEXT.remove("nan_loss")
        logits = logits * float("nan")
    return logits


def _decode(self: dataset.ImageDataset, raw: int) -> object:
    if BAD_IMAGE:
        BAD_IMAGE[0] -= 1
    if BAD_IMAGE and BAD_IMAGE[0] <= 0:
        raise DatasetError(f"{self._where(raw)}: cannot read image (injected)")
    return _real_decode(self, raw)


def _append_line(path: Path, text: str) -> None:
    _real_append_line(path, text)
    if path.name == "stats.jsonl":
        event("tick_line")


_real_atomic_write_bytes = checkpoint.atomic_write_bytes
_real_replace = os.replace
_real_unlink = Path.unlink
_real_prune = loop.Trainer._prune_snapshots
_real_step = loop.Trainer._step
_real_accumulate = loss.StyleGAN2Loss.accumulate_gradients
_real_run_D = loss.StyleGAN2Loss.run_D
_real_append_line = loop.append_line
_real_decode = dataset.ImageDataset._decode

checkpoint.atomic_write_bytes = _atomic_write_bytes
images.atomic_write_bytes = _atomic_write_bytes
runs.atomic_write_bytes = _atomic_write_bytes
os.replace = _replace
Path.unlink = _unlink  # type: ignore[method-assign]
loop.Trainer._prune_snapshots = _prune  # type: ignore[method-assign]
loop.Trainer._step = _step  # type: ignore[method-assign]
loss.StyleGAN2Loss.accumulate_gradients = _accumulate  # type: ignore[method-assign]
loss.StyleGAN2Loss.run_D = _run_D  # type: ignore[method-assign]
loop.append_line = _append_line
dataset.ImageDataset._decode = _decode  # type: ignore[method-assign]
loop.grid_size = lambda res: (4, 2)

if __name__ == "__main__":
    sys.exit(main(sys.argv[2:]))

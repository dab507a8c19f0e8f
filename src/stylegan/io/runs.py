"""Training run folders: `NNNNN-desc/` under an output directory, holding `training_options.json`,
`network-snapshot-KKKKKK.safetensors` files (NVIDIA's naming, in kimg), `stats.jsonl`, `log.txt`, images and
`train.lock`, the lock of the process training in it.

Everything in a run folder is either written atomically (snapshots, options, images: `atomic_write_bytes`) or
appended one whole line per write (`append_line`: stats.jsonl, log.txt), so a process killed at any moment
leaves complete files, plus at most one hidden temporary that `remove_temporaries` clears.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

from .checkpoint import atomic_write_bytes

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None  # type: ignore[assignment]

OPTIONS_FILE = "training_options.json"
LOCK_FILE = "train.lock"
SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6}(?:\.\d{3})?)\.safetensors")
TEMPORARY_RE = re.compile(r"\..+\.[a-z0-9_]{8}\.[A-Za-z0-9]+")  # `.NAME.XXXXXXXX.tmp` of checkpoint._mkstemp_beside
CORRUPT_SUFFIX = ".corrupt"


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether `path` is a training run folder (it holds training_options.json)."""
    return Path(path).is_dir() and (Path(path) / OPTIONS_FILE).is_file()


def new_run_dir(outdir: Path, desc: str) -> Path:
    """Create `outdir/NNNNN-desc`, NNNNN one above the highest run number in `outdir` (the next one up if
    another process takes that number first)."""
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d+)-", p.name))]
    number = max(ids, default=-1) + 1
    while True:
        run_dir = outdir / f"{number:05d}-{desc}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            number += 1


def snapshot_name(cur_nimg: int) -> str:
    """network-snapshot-KKKKKK.safetensors (kimg, NVIDIA's naming), with .FFF when not a whole kimg."""
    kimg = f"{cur_nimg // 1000:06d}" if cur_nimg % 1000 == 0 else f"{cur_nimg / 1000:010.3f}"
    return f"network-snapshot-{kimg}.safetensors"


def snapshot_kimg(path: str | os.PathLike) -> float:
    """kimg of `network-snapshot-KKKKKK[.FFF].safetensors`."""
    m = SNAPSHOT_RE.fullmatch(Path(path).name)
    if m is None:
        raise ValueError(f"{path}: not a network-snapshot-KKKKKK.safetensors file")
    return float(m.group(1))


def snapshots(run_dir: Path) -> list[Path]:
    """The run's snapshots, oldest first."""
    found = sorted((float(m.group(1)), p) for p in run_dir.glob("network-snapshot-*.safetensors") if (m := SNAPSHOT_RE.fullmatch(p.name)))
    return [p for _, p in found]


def latest_snapshot(run_dir: Path) -> Path | None:
    found = snapshots(run_dir)
    return found[-1] if found else None


def set_aside(snapshot: Path) -> Path:
    """Rename a snapshot that cannot be read to `NAME.corrupt` (kept for inspection, no longer a snapshot)."""
    target = snapshot.with_name(snapshot.name + CORRUPT_SUFFIX)
    os.replace(snapshot, target)
    return target


def read_stats(run_dir: Path) -> list[dict]:
    """The lines of stats.jsonl; a line a full disk cut short is left out."""
    path = run_dir / "stats.jsonl"
    out = []
    for ln in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError:
            continue
    return out


def truncate_stats(run_dir: Path, before_tick: int) -> None:
    """Drop stats.jsonl lines of ticks >= `before_tick` (logged after the snapshot a run continues from)."""
    if not (run_dir / "stats.jsonl").exists():
        return
    keep = [ln for ln in read_stats(run_dir) if ln.get("tick", -1) < before_tick]
    atomic_write_bytes(run_dir / "stats.jsonl", "".join(json.dumps(ln) + "\n" for ln in keep).encode())


def append_line(path: Path, text: str) -> None:
    """Append `text` and a newline in one write (a killed process leaves whole lines); errors name `path`."""
    try:
        with open(path, "ab", buffering=0) as f:
            f.write((text + "\n").encode())
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete the hidden temporaries of atomic writes that a killed process left in `run_dir` (call it while
    holding the run's lock, when no other process writes there); returns what was removed."""
    found = [p for p in run_dir.iterdir() if p.is_file() and TEMPORARY_RE.fullmatch(p.name)]
    for p in found:
        p.unlink(missing_ok=True)
    return found


class RunInUse(Exception):
    """Another process holds the run folder's lock; the message names it."""


class RunLock:
    """The lock of the one process that trains in a run folder: `fcntl.flock` on RUN/train.lock, which names the
    holder (pid and host). The kernel drops the lock when its process ends, however it ends (kill -9 too), so a
    lock is never stale: the next process takes it over. Forked children (DataLoader workers) close their copy
    of the descriptor at once, so they do not keep the lock of a killed parent. `previous` is the holder text a
    process that did not release the lock left in the file (it was killed), else None."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self.previous: str | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return
        os.register_at_fork(after_in_child=self._close_in_child)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise RunInUse(f"{run_dir} is in use by {holder}: one process trains in a run folder at a time; wait for it "
                           "to finish or stop it (Ctrl-C saves a snapshot)") from None
        self.previous = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def _close_in_child(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def release(self) -> None:
        """Clear the holder text and unlock."""
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

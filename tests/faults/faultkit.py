"""Helpers of the fault-injection tests: real `stylegan train` processes (tests/faults/inject.py) killed,
interrupted, starved of disk space or fed NaN at precise points of their own progress, and what they leave
checked file by file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from stylegan.io.checkpoint import content_digest, read_snapshot
from stylegan.io.runs import OPTIONS_FILE, TEMPORARY_RE, read_stats, snapshots
from stylegan.training.tensorboard import read_scalars

INJECT = Path(__file__).with_name("inject.py")
# Tiny networks; minibatches of 16 images; a tick per minibatch and a snapshot per tick, so that a run of 0.256 kimg
# writes 16 snapshots (and prunes 11 of them: 5 are kept).
TINY = ["--cfg", "demo", "--cbase", "256", "--cmax", "16", "--map-depth", "1", "--workers", "0", "--no-progress",
        "--batch", "16", "--tick", "0.016", "--snap", "1"]


@dataclass
class Proc:
    returncode: int
    stdout: str
    stderr: str

    def events(self, name: str) -> int:
        """How many times the process reported `name` (inject.py's "@name N" lines)."""
        return sum(1 for ln in self.stderr.splitlines() if ln.startswith(f"@{name} "))

    @property
    def errors(self) -> list[str]:
        """stderr without the event lines."""
        return [ln for ln in self.stderr.splitlines() if not ln.startswith("@")]


def train(faults: list[dict], *args: str | os.PathLike, record: Path | None = None, timeout: float = 300) -> Proc:
    """`stylegan train ARGS` in a process with `faults` injected (see inject.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if record is not None:
        env["STYLEGAN_FAULTS_RECORD"] = str(record)
    r = subprocess.run([sys.executable, str(INJECT), json.dumps(faults), "train", *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    return Proc(r.returncode, r.stdout, r.stderr)


def recorded(record: Path) -> dict[str, dict]:
    """The snapshots a process wrote (inject.py's record), by name; the last write of a name wins."""
    return {line["name"]: line for line in map(json.loads, record.read_text().splitlines())} if record.exists() else {}


def snapshot_digest(path: Path) -> str:
    """The digest of a snapshot file's tensors, as inject.py records it."""
    nets, _, aux = read_snapshot(path)
    tensors = {f"_aux.{k}": v for k, v in aux.items()}
    for name, (_, state) in nets.items():
        tensors.update({f"{name}.{k}": v for k, v in state.items()})
    return content_digest({}, tensors)


def check_run_folder(run: Path) -> list[Path]:
    """Assert that every file of a run folder is whole: snapshots read back (checksum included), JSON parses,
    stats.jsonl and log.txt hold whole lines, PNGs decode, event files hold whole records. Returns the hidden
    temporaries of atomic writes (a killed process may leave one; nothing reads them)."""
    temporaries = []
    for path in sorted(run.iterdir()):
        name = path.name
        if TEMPORARY_RE.fullmatch(name):
            temporaries.append(path)
        elif name.endswith(".safetensors"):
            read_snapshot(path)
        elif name == OPTIONS_FILE:
            json.loads(path.read_text())
        elif name in ("stats.jsonl", "log.txt"):
            text = path.read_text()
            assert text == "" or text.endswith("\n"), f"{name}: last line cut short"
            if name == "stats.jsonl":
                assert len(read_stats(run)) == len(text.splitlines()), "a stats.jsonl line does not parse"
        elif name.endswith(".png"):
            with Image.open(path) as im:
                im.load()
        elif name.startswith("events.out.tfevents."):
            read_scalars(path)
        elif name not in ("train.lock",) and not name.endswith(".corrupt"):
            raise AssertionError(f"unexpected file {name}")
    return temporaries


def assert_same_training(run: Path, reference: Path) -> None:
    """`run` ends with the reference run's networks, optimizer state and statistics, bit for bit, and the same
    stats.jsonl ticks and numbers (timings aside)."""
    (final,) = snapshots(reference)[-1:]
    assert snapshots(run)[-1].name == final.name
    nets_a, _, aux_a = read_snapshot(final)
    nets_b, _, aux_b = read_snapshot(run / final.name)
    for name in nets_a:
        for key, value in nets_a[name][1].items():
            assert torch.equal(nets_b[name][1][key], value), f"{name}.{key} differs"
    for key, value in aux_a.items():
        assert torch.equal(aux_b[key], value), f"{key} differs"
    a, b = read_stats(reference), read_stats(run)
    assert [s["tick"] for s in b] == [s["tick"] for s in a] == list(range(len(a)))
    for sa, sb in zip(a, b):
        keys = sorted(k for k in sa if k.startswith(("Loss/", "Progress/")))
        assert [sb[k] for k in keys] == [sa[k] for k in keys], sa["tick"]


def uninterrupted_run(data: Path, out: Path, kimg: str) -> tuple[Path, dict[str, dict]]:
    """A run of `kimg` without faults in `out`, and the digests of every snapshot it wrote (by name)."""
    record = out / "record.jsonl"
    r = train([], *TINY, "--data", data, "--kimg", kimg, "--outdir", out / "runs", record=record)
    assert r.returncode == 0, r.stderr
    (run,) = (out / "runs").iterdir()
    return run, recorded(record)

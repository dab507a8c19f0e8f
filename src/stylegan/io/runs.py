"""Training run folders: `NNNNN-desc/` under an output directory, holding `training_options.json`,
`network-snapshot-KKKKKK.safetensors` files (NVIDIA's naming, in kimg), `stats.jsonl` and images."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .checkpoint import atomic_write_bytes

OPTIONS_FILE = "training_options.json"
SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6}(?:\.\d{3})?)\.safetensors")


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether `path` is a training run folder (it holds training_options.json)."""
    return Path(path).is_dir() and (Path(path) / OPTIONS_FILE).is_file()


def new_run_dir(outdir: Path, desc: str) -> Path:
    """Create `outdir/NNNNN-desc`, NNNNN one above the highest run number in `outdir`."""
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d+)-", p.name))]
    run_dir = outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"
    run_dir.mkdir()
    return run_dir


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


def truncate_stats(run_dir: Path, before_tick: int) -> None:
    """Drop stats.jsonl lines of ticks >= `before_tick` (logged after the snapshot a run continues from)."""
    path = run_dir / "stats.jsonl"
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("tick", -1) < before_tick]
    atomic_write_bytes(path, "".join(ln + "\n" for ln in keep).encode())

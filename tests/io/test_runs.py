"""io.runs: run folder numbering, snapshot names (NVIDIA's kimg naming) and stats truncation."""

import json

import pytest

from stylegan.io.runs import (OPTIONS_FILE, is_run_dir, latest_snapshot, new_run_dir, snapshot_kimg, snapshot_name, snapshots,
                              truncate_stats)


def test_snapshot_names_and_order(tmp_path):
    assert snapshot_name(0) == "network-snapshot-000000.safetensors"
    assert snapshot_name(40000) == "network-snapshot-000040.safetensors"
    assert snapshot_name(1512) == "network-snapshot-000001.512.safetensors"
    assert snapshot_kimg(tmp_path / "network-snapshot-000001.512.safetensors") == 1.512
    with pytest.raises(ValueError, match="not a network-snapshot"):
        snapshot_kimg("network-snapshot-1.safetensors")
    assert latest_snapshot(tmp_path) is None
    for nimg in (40000, 1512, 8000, 120000):
        (tmp_path / snapshot_name(nimg)).write_bytes(b"")
    (tmp_path / "network-snapshot-x.safetensors").write_bytes(b"")  # not a snapshot name: ignored
    assert [p.name for p in snapshots(tmp_path)] == [snapshot_name(n) for n in (1512, 8000, 40000, 120000)]
    assert latest_snapshot(tmp_path).name == "network-snapshot-000120.safetensors"


def test_run_folders_are_numbered_after_the_highest(tmp_path):
    assert new_run_dir(tmp_path / "runs", "demo-x").name == "00000-demo-x"
    (tmp_path / "runs" / "00007-old").mkdir()
    (tmp_path / "runs" / "notes").mkdir()
    run = new_run_dir(tmp_path / "runs", "demo-y")
    assert run.name == "00008-demo-y" and run.is_dir()
    assert not is_run_dir(run)
    (run / OPTIONS_FILE).write_text("{}")
    assert is_run_dir(run) and not is_run_dir(run / OPTIONS_FILE)


def test_truncate_stats_keeps_the_ticks_before(tmp_path):
    truncate_stats(tmp_path, 2)  # no stats.jsonl: nothing to do
    lines = [{"tick": t, "kimg": t * 4} for t in range(5)]
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines) + "\n")
    truncate_stats(tmp_path, 3)
    assert [json.loads(ln) for ln in (tmp_path / "stats.jsonl").read_text().splitlines()] == lines[:3]

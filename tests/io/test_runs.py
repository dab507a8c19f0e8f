"""io.runs: run folder numbering, snapshot names (NVIDIA's kimg naming), stats truncation, the run lock and the
leftovers of killed processes."""

import json
import os
import socket
import subprocess
import sys

import pytest

from stylegan.io.runs import (LOCK_FILE, OPTIONS_FILE, RunInUse, RunLock, append_line, is_run_dir, latest_snapshot, new_run_dir, read_stats,
                              remove_temporaries, snapshot_kimg, snapshot_name, snapshots, truncate_stats)


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


def test_a_run_folder_has_one_lock_holder(tmp_path):
    first = RunLock(tmp_path)
    assert first.previous is None and (tmp_path / LOCK_FILE).read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    with pytest.raises(RunInUse, match=rf"{tmp_path} is in use by pid {os.getpid()} on "):
        RunLock(tmp_path)  # another open of the lock file: another holder, refused
    first.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # a released lock names nobody
    with RunLock(tmp_path) as second:
        assert second.previous is None


def test_a_killed_holder_leaves_a_lock_that_is_taken_over(tmp_path):
    code = ("import sys, time; from pathlib import Path; from stylegan.io.runs import RunLock; "
            "lock = RunLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RunInUse, match=f"pid {holder.pid} on"):
            RunLock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path) as lock:
        assert lock.previous == f"pid {holder.pid} on {socket.gethostname()}"


def test_temporaries_of_atomic_writes_are_found_and_nothing_else(tmp_path):
    keep = ["network-snapshot-000001.safetensors", "stats.jsonl", ".hidden", ".DS_Store", "log.txt", "x.tmp"]
    gone = [".network-snapshot-000002.safetensors.k2_9xq0a.tmp", ".stats.jsonl.abcdefgh.tmp", ".proj.mp4.0123abcd.mp4"]
    for name in keep + gone:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in remove_temporaries(tmp_path)) == sorted(gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_stats_lines_cut_short_by_a_full_disk_are_left_out(tmp_path):
    lines = [{"tick": t, "kimg": t * 4} for t in range(3)]
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines) + '{"tick": 3, "ki')
    assert read_stats(tmp_path) == lines
    truncate_stats(tmp_path, 2)
    assert read_stats(tmp_path) == lines[:2]
    append_line(tmp_path / "stats.jsonl", json.dumps(lines[2]))
    assert read_stats(tmp_path) == lines
    with pytest.raises(OSError) as e:
        append_line(tmp_path / "missing" / "log.txt", "x")
    assert e.value.filename == str(tmp_path / "missing" / "log.txt")

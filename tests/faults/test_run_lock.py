"""One process per run folder (a lock the kernel drops when its holder dies, even with DataLoader workers still
alive), Ctrl-C at a tick boundary keeps that tick's line, a finished run says so instead of training on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from faultkit import INJECT, TINY, assert_same_training, train

from stylegan.io.runs import read_stats, snapshots


def _start(faults: str, *args: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(INJECT), faults, "train", *map(str, args)], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(proc: subprocess.Popen, event: str) -> None:
    assert proc.stderr is not None
    deadline = time.time() + 120
    for line in proc.stderr:
        if line.startswith(f"@{event} "):
            return
        assert time.time() < deadline, f"no @{event} from the process"
    raise AssertionError(f"the process ended before @{event}")


@pytest.mark.slow
def test_second_resume_is_refused_and_a_killed_holder_leaves_no_stale_lock(data64, tmp_path):
    out = tmp_path / "runs"
    args = [*TINY, "--data", data64, "--kimg", "0.256"]
    assert train([{"at": "minibatch", "n": 3, "do": "sigint"}], *args, "--outdir", out).returncode == 0
    (run,) = out.iterdir()

    # the holder reads its data in a DataLoader worker, a forked process that outlives it for a moment
    holder = _start('[{"at": "minibatch", "n": 2, "do": "pause", "seconds": 600}]', "--resume", run, "--workers", 1)
    try:
        _wait_for(holder, "minibatch")  # trains, holding the lock (and, with workers, a forked DataLoader worker)
        r = train([], "--resume", run)
        assert r.returncode == 2 and r.errors == [
            f"stylegan train: error: --resume {run} is in use by pid {holder.pid} on {os.uname().nodename}: one process trains "
            "in a run folder at a time; wait for it to finish or stop it (Ctrl-C saves a snapshot)"]
        os.kill(holder.pid, signal.SIGKILL)  # the holder only: a DataLoader worker may outlive it for a moment
        holder.wait(timeout=60)
        r = train([], "--resume", run)  # at once: the lock died with its holder
        assert r.returncode == 0, r.stderr
        assert f"note: the run's previous process (pid {holder.pid} on " in (run / "log.txt").read_text()
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()


@pytest.mark.slow
def test_ctrl_c_at_a_tick_boundary_keeps_the_tick_line(data64, tmp_path):
    out = tmp_path / "runs"
    # Ticks of 2 minibatches (tick 0: the first one), snapshots every 4 ticks: Ctrl-C during minibatch 5 (after its G
    # regularisation phase, the 12th phase of the run), which ends tick 2 (no snapshot there).
    args = [*TINY[:-4], "--tick", "0.032", "--snap", "4", "--data", data64, "--kimg", "0.256"]
    r = train([{"at": "phase", "n": 12, "do": "sigint"}], *args, "--outdir", out)
    assert r.returncode == 0, r.stderr
    (run,) = out.iterdir()
    assert [line["tick"] for line in read_stats(run)] == [0, 1, 2]  # tick 2 ended as Ctrl-C came: its line is kept
    assert read_stats(run)[-1]["kimg"] == 0.080
    assert [p.name for p in snapshots(run)][-1] == "network-snapshot-000000.080.safetensors"  # the interrupted state

    r = train([], "--resume", run)
    assert r.returncode == 0, r.stderr
    full = tmp_path / "full"
    assert train([], *args, "--outdir", full).returncode == 0
    (uninterrupted,) = full.iterdir()
    assert_same_training(run, uninterrupted)


@pytest.mark.slow
def test_a_finished_run_is_not_trained_further(data64, reference, tmp_path):
    ref_run, _ = reference
    before = {p.name: p.stat().st_mtime_ns for p in snapshots(ref_run)}
    lines = len(read_stats(ref_run))
    r = train([], "--resume", ref_run)
    assert r.returncode == 0 and r.events("minibatch") == 0
    assert f"{ref_run} is finished: 0.256 of 0.256 kimg trained (network-snapshot-000000.256.safetensors); nothing to do" in r.stdout
    assert {p.name: p.stat().st_mtime_ns for p in snapshots(ref_run)} == before and len(read_stats(ref_run)) == lines

"""A full disk and a read-only folder while a snapshot (or an image) is written: one line naming the run folder,
exit status 2, the previous snapshot intact, nothing half-written left, and `--resume` finishes the run exactly."""

from __future__ import annotations

import pytest
from faultkit import TINY, assert_same_training, check_run_folder, recorded, snapshot_digest, train

from stylegan.io.runs import latest_snapshot, snapshot_kimg, snapshot_name

CASES = [
    ("snapshot_write", 4, "enospc", "No space left on device"),
    ("snapshot_write", 7, "erofs", "Read-only file system"),
    ("png_write", 5, "enospc", "No space left on device"),
]


@pytest.mark.slow
@pytest.mark.parametrize("event, n, action, message", CASES, ids=[f"{a}-{e}{n}" for e, n, a, _ in CASES])
def test_write_errors_stop_cleanly_and_resume_exactly(event, n, action, message, data64, reference, tmp_path):
    ref_run, ref_digests = reference
    out = tmp_path / "runs"
    record = tmp_path / "record.jsonl"
    r = train([{"at": event, "n": n, "do": action}], *TINY, "--data", data64, "--kimg", "0.256", "--outdir", out, record=record)
    assert r.returncode == 2, r.stderr
    (run,) = out.iterdir()
    assert len(r.errors) == 1, r.errors
    (error,) = r.errors
    newest = latest_snapshot(run)
    assert newest is not None
    assert error.startswith(f"stylegan train: error: {run}/") and message in error
    assert f"{run} keeps its snapshots up to {newest.name}; once fixed, continue with: stylegan train --resume {run}" in error
    assert ".tmp" not in error  # the file the user asked for, never the hidden temporary
    if event == "snapshot_write":  # the snapshot that failed is the one after the newest
        assert error.startswith(f"stylegan train: error: {run}/{snapshot_name(round(snapshot_kimg(newest) * 1000) + 16)}")
    assert check_run_folder(run) == []  # nothing half-written
    assert snapshot_digest(newest) == ref_digests[newest.name]["digest"] == recorded(record)[newest.name]["digest"]

    r = train([], "--resume", run)
    assert r.returncode == 0, r.stderr
    assert_same_training(run, ref_run)

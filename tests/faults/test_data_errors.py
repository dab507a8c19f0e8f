"""An image that cannot be read, found after the run started: one line naming it (also when a DataLoader worker
found it), and the run folder removed when nothing was trained yet, else kept for `--resume`."""

from __future__ import annotations

import pytest
from faultkit import TINY, assert_same_training, check_run_folder, train

from stylegan.io.runs import snapshots


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "1"])
def test_bad_image_after_snapshots_keeps_the_run_for_resume(workers, data64, reference, tmp_path):
    ref_run, _ = reference
    out = tmp_path / "runs"
    # the 40th image read fails: one in the 3rd minibatch, read by the training process or by its DataLoader worker
    r = train([{"at": "png_write", "n": 2, "do": "bad_image", "after": 40}], *TINY, "--workers", workers, "--data", data64,
              "--kimg", "0.256", "--outdir", out)
    (run,) = out.iterdir()
    assert r.returncode == 2 and len(r.errors) == 1, r.stderr
    assert r.errors[0].startswith(f"stylegan train: error: {data64}:") and ": cannot read image (injected); " in r.errors[0]
    assert r.errors[0].endswith(f"{run} keeps its snapshots up to network-snapshot-000000.032.safetensors; once fixed, "
                                f"continue with: stylegan train --resume {run}")
    check_run_folder(run)
    assert train([], "--resume", run).returncode == 0
    assert_same_training(run, ref_run)


@pytest.mark.slow
def test_bad_image_before_the_first_snapshot_leaves_no_run_folder(data64, tmp_path):
    out = tmp_path / "runs"
    r = train([{"at": "png_write", "n": 1, "do": "bad_image", "after": 1}], *TINY, "--data", data64, "--kimg", "0.256", "--outdir", out)
    assert r.returncode == 2 and len(r.errors) == 1, r.stderr
    assert ": cannot read image (injected); nothing was trained yet, so " in r.errors[0] and r.errors[0].endswith(" was removed")
    assert not out.exists()  # nor the output folder this start created
    assert not list(snapshots(tmp_path))

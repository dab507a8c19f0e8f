"""NaN injected into the loss or the weights: found at the tick, reported with it, and the run rolls back to its
newest snapshot (or stops, with --on-nan stop); no snapshot with a non-finite value is ever written. A transient
NaN rolled back leaves the run on the uninterrupted run's trajectory, bit for bit."""

from __future__ import annotations

import math

import pytest
from faultkit import TINY, assert_same_training, check_run_folder, recorded, train

from stylegan.io.runs import read_stats

CASES = [
    # injected in minibatch 6: tick 5 is non-finite, back to the snapshot of tick 4
    ("nan_weights", 5, "Loss/D/loss, Loss/G/loss, Loss/scores/fake, weights of G, weights of G_ema", 4),
    ("nan_loss", 9, "Loss/G/loss, Loss/scores/fake", 8),  # D's logits in the G phase of minibatch 10
]


@pytest.mark.slow
@pytest.mark.parametrize("action, n, what, good_tick", CASES, ids=[c[0] for c in CASES])
def test_nan_is_rolled_back_and_the_run_goes_on_exactly(action, n, what, good_tick, data64, reference, tmp_path):
    ref_run, ref_digests = reference
    out = tmp_path / "runs"
    record = tmp_path / "record.jsonl"
    r = train([{"at": "minibatch", "n": n, "do": action}], *TINY, "--data", data64, "--kimg", "0.256", "--outdir", out, record=record)
    assert r.returncode == 0, r.stderr
    (run,) = out.iterdir()
    log = (run / "log.txt").read_text()
    bad_tick, kimg = good_tick + 1, (good_tick + 2) * 16 / 1000
    good = f"network-snapshot-{(good_tick + 1) * 16 / 1000:010.3f}.safetensors"
    assert f"warning: tick {bad_tick} (kimg {kimg:.3f}): non-finite {what}" in log
    assert f"; rolled back to {good} (rollback 1 of at most 3)" in log
    written = recorded(record)
    assert all(line["finite"] for line in written.values()) and all(ref_digests[k]["digest"] == v["digest"] for k, v in written.items())
    assert all(math.isfinite(v) for line in read_stats(run) for v in line.values() if isinstance(v, float))
    check_run_folder(run)
    assert_same_training(run, ref_run)
    print(f"\nNaN rolled back: {action} at tick {bad_tick}, back to {good}")


@pytest.mark.slow
def test_on_nan_stop_stops_without_saving_and_resume_finishes(data64, reference, tmp_path):
    ref_run, _ = reference
    out = tmp_path / "runs"
    record = tmp_path / "record.jsonl"
    r = train([{"at": "minibatch", "n": 3, "do": "nan_weights"}], *TINY, "--data", data64, "--kimg", "0.256", "--on-nan", "stop",
              "--outdir", out, record=record)
    (run,) = out.iterdir()
    assert r.returncode == 2 and r.errors == [
        "stylegan train: error: tick 3 (kimg 0.064): non-finite Loss/D/loss, Loss/G/loss, Loss/scores/fake, weights of G, "
        "weights of G_ema; stopped (--on-nan stop), nothing saved; the newest good snapshot is "
        f"network-snapshot-000000.048.safetensors; continue with: stylegan train --resume {run}"], r.errors
    assert sorted(recorded(record)) == [f"network-snapshot-000000.0{k}.safetensors" for k in (16, 32, 48)]
    r = train([], "--resume", run)
    assert r.returncode == 0, r.stderr
    assert_same_training(run, ref_run)


@pytest.mark.slow
def test_a_run_that_keeps_diverging_stops_after_three_rollbacks(data64, tmp_path):
    out = tmp_path / "runs"
    record = tmp_path / "record.jsonl"
    faults = [{"at": "minibatch", "n": n, "do": "nan_weights"} for n in range(4, 8)]  # every replay of minibatch 5 diverges
    r = train(faults, *TINY, "--data", data64, "--kimg", "0.256", "--outdir", out, record=record)
    (run,) = out.iterdir()
    assert r.returncode == 2 and len(r.errors) == 1
    assert r.errors[0].startswith("stylegan train: error: tick 4 (kimg 0.080): non-finite ")
    assert "again after 3 rollbacks: the run diverges" in r.errors[0]
    assert f"{run} keeps its snapshots up to network-snapshot-000000.064.safetensors" in r.errors[0]
    assert (run / "log.txt").read_text().count("rolled back to network-snapshot-000000.064.safetensors") == 3
    assert all(line["finite"] for line in recorded(record).values())

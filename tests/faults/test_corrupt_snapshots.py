"""Damaged newest snapshots (cut short, bytes flipped in the tensors or in the header): `--resume` says which one
it sets aside and why, continues from the newest whole one, and ends with the uninterrupted run's networks."""

from __future__ import annotations

import pytest
from faultkit import TINY, assert_same_training, check_run_folder, train

from stylegan.io.runs import snapshots


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 3]


def _flip_tensor_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[-1000] ^= 0x10  # inside the tensor data: only the checksum can tell
    return bytes(out)


def _flip_header_byte(data: bytes) -> bytes:
    out = bytearray(data)
    at = data.index(b"cur_nimg")
    at = next(i for i in range(at, at + 20) if data[i:i + 1].isdigit())  # a digit of the training state in the metadata
    out[at] = ord("7") if out[at] != ord("7") else ord("3")
    return bytes(out)


CASES = {
    "truncated": [_truncate],
    "flipped tensor byte": [_flip_tensor_byte],
    "flipped header byte, then an empty file": [_flip_header_byte, lambda data: b""],
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", CASES.values(), ids=list(CASES))
def test_resume_falls_back_to_the_newest_whole_snapshot(damage, data64, reference, tmp_path):
    ref_run, _ = reference
    out = tmp_path / "runs"
    r = train([{"at": "minibatch", "n": 9, "do": "sigint"}], *TINY, "--data", data64, "--kimg", "0.256", "--outdir", out)
    assert r.returncode == 0, r.stderr
    (run,) = out.iterdir()
    found = snapshots(run)
    damaged = found[-len(damage):][::-1]  # the newest first
    for snap, hurt in zip(damaged, damage):
        snap.write_bytes(hurt(snap.read_bytes()))
    good = found[-len(damage) - 1]

    r = train([], "--resume", run)
    assert r.returncode == 0, r.stderr
    log = (run / "log.txt").read_text()
    for snap in damaged:
        assert f"warning: {snap.name} cannot be read (" in log and f"set aside as {snap.name}.corrupt" in log
        assert (run / f"{snap.name}.corrupt").is_file()
    assert f"continuing {run} from {good.name}" in log
    check_run_folder(run)
    assert_same_training(run, ref_run)
    print(f"\ncorruptions detected: {len(damaged)} ({', '.join(f.__name__.strip('_') for f in damage)})")

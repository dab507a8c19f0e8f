"""kill -9 of a training process at 20 seeded random moments of its own progress, each followed by
`stylegan train --resume`: the run folder stays whole after every kill, every snapshot ever present equals the
uninterrupted run's, and the run ends with the uninterrupted run's networks, bit for bit (about 2 minutes on 2 cores)."""

from __future__ import annotations

import random
import time

import pytest
from faultkit import TINY, assert_same_training, check_run_folder, recorded, snapshot_digest, train, uninterrupted_run

from stylegan.io.runs import snapshots

# Where a kill can land, with the largest occurrence count drawn for it (events are counted from the start of each
# process; inject.py documents them). The first ten, one kill each, are the windows that must be covered.
WINDOWS = {
    "snapshot_write": 2,  # inside a snapshot write: half of it in the hidden temporary
    "snapshot_rename": 2,  # the temporary complete, not yet renamed into place
    "snapshot_renamed": 2,  # renamed, the folder not yet synced
    "prune": 2,  # between writing a snapshot and pruning the old ones
    "pruned_one": 2,  # mid-pruning
    "phase": 5,  # mid-minibatch, between the G and D phases
    "minibatch": 3,  # between minibatches, inside a tick
    "tick_line": 2,  # a tick's stats line written, its snapshot not yet
    "png_write": 3,  # inside a PNG write (reals.png, fakes)
    "stats_rewrite": 1,  # inside the stats.jsonl rewrite of a resume
}
KILLS = 20
SEED = 15
KIMG = "0.384"  # 24 minibatches, ticks and snapshots: each process killed makes about one of them


def kill_moments() -> list[tuple[str, int]]:
    """20 (event, occurrence) moments: one in each window, the rest drawn at random; seeded, so reproducible."""
    rng = random.Random(SEED)
    moments = [(event, rng.randint(1, top)) for event, top in WINDOWS.items()]
    moments += [(event, rng.randint(1, WINDOWS[event])) for event in rng.choices(list(WINDOWS), k=KILLS - len(moments))]
    rng.shuffle(moments)
    # A fresh run has no resume to rewrite stats for, and none of its first 5 snapshots prunes anything.
    early = [m for m in moments[:4] if m[0] in ("stats_rewrite", "pruned_one")]
    return [m for m in moments if m not in early] + early


@pytest.mark.slow
def test_twenty_kills_leave_a_whole_run_that_resumes_exactly(data64, tmp_path):
    start = time.time()
    ref_run, ref_digests = uninterrupted_run(data64, tmp_path / "reference", KIMG)
    out = tmp_path / "runs"
    args = [*TINY, "--data", data64, "--kimg", KIMG]
    survived, temporaries = [], 0
    for i, (event, n) in enumerate(kill_moments()):
        record = tmp_path / f"record{i}.jsonl"
        existing = list(out.iterdir()) if out.exists() else []
        r = train([{"at": event, "n": n, "do": "kill"}], *(["--resume", existing[0]] if existing else [*args, "--outdir", out]),
                  record=record)
        assert r.returncode == -9, f"kill {i} ({event} #{n}) not reached: exit {r.returncode}\n{r.stderr[-2000:]}"
        (run,) = out.iterdir()
        temporaries += len(check_run_folder(run))
        for snap in snapshots(run):  # whatever a process wrote equals what the uninterrupted run wrote
            assert snapshot_digest(snap) == ref_digests[snap.name]["digest"], (i, event, n, snap.name)
        assert all(line["digest"] == ref_digests[name]["digest"] for name, line in recorded(record).items())
        survived.append(f"{event}#{n}")
    (run,) = out.iterdir()
    r = train([], "--resume", run)
    assert r.returncode == 0, r.stderr
    assert check_run_folder(run) == []  # the resumed process removed what the killed ones left
    assert len(snapshots(run)) == 5
    assert_same_training(run, ref_run)
    log = (run / "log.txt").read_text()
    assert log.count("ended without finishing; taking over") == KILLS  # each process after a kill took over its lock
    print(f"\nkills survived: {len(survived)} ({', '.join(survived)}); half-written temporaries left by them and "
          f"cleared on resume: {temporaries}; {time.time() - start:.0f} s")

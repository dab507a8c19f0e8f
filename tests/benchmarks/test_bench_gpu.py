"""Smoke test of benchmarks/bench_gpu.py: its --tiny settings on the CPU give a complete JSON report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


@pytest.mark.slow
def test_tiny_run_reports_every_phase_iteration_and_inference(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--backends", "torch", "--configs", "stylegan2",
                        "--timeout", "300", "--json", str(out)], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["settings"]["tiny"] and report["environment"]["device"] == "cpu"
    (row,) = report["results"]
    assert "error" not in row, row.get("stderr_tail")
    assert row["config"] == "stylegan2" and row["backend"] == "torch" and row["ops"].startswith("ops backend: torch fast paths on cpu")
    assert set(row["phases"]) == {"Gmain", "Greg", "Dmain", "Dreg"}
    for phase in row["phases"].values():
        assert phase["ms"] > 0 and phase["syncs"] is None and phase["peak_gib"] is None  # syncs and memory: CUDA only
    assert row["iteration"]["s_per_kimg"] > 0 and row["iteration"]["iters"] == 2
    assert row["inference"]["img_per_s"] > 0 and row["inference"]["batch"] == 2
    assert "stylegan2    torch" in r.stdout  # the one-line summary per config and backend

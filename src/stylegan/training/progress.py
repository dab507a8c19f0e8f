"""What a training run reports while it runs, and how it is asked to stop: the statistics of a tick
(`StatsCollector`), the console line of a tick, the console itself, and Ctrl-C / SIGTERM (`StopRequest`)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch

from ..metrics.registry import format_time
from .distributed import DistEnv


def console(text: str) -> None:
    """Print a log line. A reader of stdout that went away (`stylegan train ... | head`) silences the console; the
    run goes on (log.txt keeps every line)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class StatsCollector:
    """Running count / sum / sum of squares per statistic name, mergeable across processes."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self._acc: dict[str, torch.Tensor] = {}

    def report(self, name: str, values: torch.Tensor) -> None:
        v = values.detach().flatten().to(self.dtype)
        row = torch.stack([torch.tensor(float(v.numel()), dtype=self.dtype, device=v.device), v.sum(), v.square().sum()])
        if name in self._acc:
            self._acc[name] += row.to(self.device)
        else:
            self._acc[name] = row.to(self.device)

    def state(self) -> dict[str, list[float]]:
        return {k: [float(x) for x in v.tolist()] for k, v in self._acc.items()}

    def accumulators(self) -> list[torch.Tensor]:
        """The open sums (checked for non-finite values before a snapshot stores them)."""
        return list(self._acc.values())

    def load(self, state: dict[str, list[float]]) -> None:
        self._acc = {k: torch.tensor(v, dtype=self.dtype, device=self.device) for k, v in state.items()}

    def means(self, env: DistEnv) -> dict[str, float]:
        """Means over all processes since the last call (every process must call it); then reset."""
        names = sorted(self._acc)
        out: dict[str, float] = {}
        if names:
            table = env.sum_(torch.stack([self._acc[n] for n in names]))
            for name, (n, s, _) in zip(names, table.tolist()):
                out[name] = s / n if n > 0 else float("nan")
        self._acc = {}
        return out


def tick_console_parts(line: dict[str, Any], kimg: float, *, cuda: bool, augment: bool, growing: bool) -> list[str]:
    """The console line of a tick's stats.jsonl record, as parts ("tick 3", "kimg 12.000", ...); `kimg` is the
    run's length (for the ETA)."""
    remaining = max(kimg - line["kimg"], 0) * line["Timing/sec_per_kimg"]
    parts = [f"tick {line['tick']:<4d}", f"kimg {line['kimg']:<9.3f}", f"time {format_time(line['Timing/total_sec']):<10s}",
             f"sec/tick {line['Timing/sec_per_tick']:<6.1f}", f"sec/kimg {line['Timing/sec_per_kimg']:<6.2f}",
             f"maintenance {line['Timing/maintenance_sec']:<5.1f}", f"cpumem {line['Resources/peak_cpu_mem_gb']:.2f}"]
    if cuda:
        parts.append(f"gpumem {line['Resources/peak_gpu_mem_gb']:.2f}")
    if augment:
        parts.append(f"augment {line['Progress/augment']:.3f}")
    if growing:
        parts.append(f"lod {line['Progress/lod']:.2f}")
    for key, label in (("Loss/G/loss", "G"), ("Loss/D/loss", "D"), ("Loss/r1_penalty", "r1"), ("Loss/pl_penalty", "pl")):
        if key in line:
            parts.append(f"{label} {line[key]:.3f}")
    parts.append(f"eta {format_time(remaining)}")
    return parts


class StopRequest:
    """First SIGINT/SIGTERM asks the loop to save and stop at the end of the minibatch; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping: saving a snapshot at the end of this minibatch (press Ctrl-C again to abort without saving)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

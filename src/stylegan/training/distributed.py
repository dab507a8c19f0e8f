"""Processes of a training run: torchrun's environment, the collectives the loop needs, and `--gpus N`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    """This process's place in the run; with `world_size == 1` every collective is the identity."""

    rank: int
    world_size: int
    device: torch.device

    def sum_(self, x: torch.Tensor) -> torch.Tensor:
        """All-reduce `x` in place (sum over processes)."""
        if self.world_size > 1:
            dist.all_reduce(x)
        return x

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The average of `x` over processes (a new tensor)."""
        if self.world_size == 1:
            return x
        y = x.detach().clone()
        dist.all_reduce(y)
        return y / self.world_size

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Give every process rank 0's parameters and buffers."""
        if self.world_size > 1:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def broadcast_object(self, obj: object) -> object:
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is true on any."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item())


def init_from_env(device: str = "auto") -> DistEnv:
    """Join the process group that torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK), or run alone.
    nccl with one CUDA device per process, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world, device=dev)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch_torchrun(argv: list[str], nproc: int) -> int:
    """Run `stylegan ARGV` in `nproc` processes on this machine through torchrun; returns its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "stylegan", *argv]
    return subprocess.call(cmd)

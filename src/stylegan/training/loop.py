"""The training loop of StyleGAN2/3 as NVIDIA's `training_loop.py` runs it: G and D phases with lazy
regularisation, G_ema, ADA, ticks, image grids, snapshots and metrics — plus exact resume.

Randomness is counter-based: every minibatch draws its latents and labels on the device from a generator seeded by
(seed, images seen so far), and every chunk of it reseeds torch's global generator from (seed, images seen,
phase, chunk index within the global minibatch) before running. So a run continued from a snapshot repeats
the uninterrupted run's numbers, and a chunk computes the same thing whether it is an accumulation round
or another process's share.

On CUDA the steady state never waits for the GPU: statistics, the count of non-finite gradient entries and ADA's
r_t stay on the device (read at the tick, with the non-finite check), and style mixing picks its cutoff there.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import ImageDataset
from ..data.sampler import InfiniteSampler, RankBatches
from ..io.checkpoint import read_snapshot, save_checkpoint
from ..io.images import from_uint8, save_image_grid
from ..io.runs import CORRUPT_SUFFIX, append_line, latest_snapshot, read_stats, set_aside, snapshot_name, snapshots, truncate_stats
from ..metrics.registry import MetricOptions, compute, report_metric
from ..models.registry import build_network, network_spec
from .augment import ada_update, augment_pipe
from .distributed import DistEnv
from .growing import Schedule, fade_reals, level_changed, schedule
from .loss import StyleGAN2Loss, ema_beta, lazy_regularization
from .loss_xl import ProjectedGANLoss
from .options import TrainingOptions
from .progress import StatsCollector, StopRequest, console, tick_console_parts
from .report import class_grid, grid_indices, grid_size, plot_curves, truncation_sweep
from .tensorboard import ScalarWriter
from .xl import prepare_discriminator, projected_loss, restore_state, snapshot_state

MAX_ROLLBACKS = 3  # rollbacks after non-finite values before the run stops (a snapshot written in between resets the count)


class TrainingStopped(Exception):
    """The run cannot go on (non-finite values it could not roll back from); the message is one line saying why and
    where the run stands."""


def cuda_policy(benchmark: bool = True, tf32: bool = False) -> None:
    """NVIDIA's training settings: cuDNN autotuning on (fixed shapes; `--nobench` turns it off), TF32 off for
    convolutions and matrix products unless `--tf32` (TF32 moves float32 results by up to 1e-2). No-ops off CUDA."""
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32


def derive_seed(*parts: int) -> int:
    """A well-mixed 31-bit seed from integers (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class Phase:
    name: str
    module: torch.nn.Module
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    interval: int


@dataclass
class LoopState:
    """Where a run stands; saved in every snapshot."""

    cur_nimg: int = 0
    batch_idx: int = 0
    cur_tick: int = 0  # the tick in progress
    tick_start_nimg: int = 0
    total_time: float = 0.0  # seconds of training before this process started
    nonfinite_grads: int = 0  # in the tick in progress
    lod: float | None = None  # progressive growing: the level of detail of the last minibatch
    stats: dict[str, list[float]] = field(default_factory=dict)
    ada_stats: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_dir: Path
    cur_nimg: int
    interrupted: bool
    last_snapshot: Path | None


def _trainable(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _stylegan2_loss(t: Trainer) -> StyleGAN2Loss:
    return StyleGAN2Loss(t.G, t.D, t.opts.loss, t.augment, report=t._report, mean_across=t.env.mean)


def _projected_loss(t: Trainer) -> ProjectedGANLoss:
    """StyleGAN-XL's loss; its D gets the pretrained feature networks (stored in snapshots by reference) first."""
    t.backbone_records = prepare_discriminator(t.D, t.opts)
    return projected_loss(t.G, t.D, t.opts, t.device, t._report)


LOSSES: dict[str, Callable[[Trainer], StyleGAN2Loss | ProjectedGANLoss]] = {"stylegan2": _stylegan2_loss, "projected": _projected_loss}


class Trainer:
    """One process of a training run."""

    def __init__(self, opts: TrainingOptions, run_dir: Path, env: DistEnv, *, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.opts, self.run_dir, self.env = opts, run_dir, env
        self.device = env.device
        self.progress = progress and env.rank == 0
        self._log = log or console
        torch.manual_seed(opts.seed)
        self.dataset = ImageDataset(opts.data, xflip=opts.mirror, use_labels=opts.cond, seed=opts.seed)
        self.labels = torch.stack([self.dataset.get_label(i) for i in range(len(self.dataset))]).to(self.device) if opts.cond else None

        self.G = build_network(opts.G).train().to(self.device)
        self.D = build_network(opts.D).train().to(self.device)
        # Construction leaves D's frozen layers (--freezed) with requires_grad=False: remember what trains.
        self.G_params, self.D_params = _trainable(self.G), _trainable(self.D)
        self.G.requires_grad_(False)
        self.D.requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.augment = None
        if opts.aug != "noaug":
            self.augment = augment_pipe(opts.augpipe).train().requires_grad_(False).to(self.device)
            self.augment.p.copy_(torch.as_tensor(opts.augment_p))
        self.collector = StatsCollector(self.device)
        self.ada_collector = StatsCollector(self.device)
        self.backbone_records: dict[str, dict[str, Any]] = {}  # frozen feature networks stored by reference in snapshots
        self.loss = LOSSES[opts.loss_kind](self)
        frozen = {id(p) for name, p in self.G.named_parameters() if name in self.loss.frozen}  # e.g. XL's stem in a later stage
        self.G_params = [p for p in self.G_params if id(p) not in frozen]
        self.phases = self._make_phases()
        self.state = LoopState()
        self._nonfinite_grads = torch.zeros([], dtype=torch.int64, device=self.device)  # since the last fold into state
        self._last_summary = ""  # sec/kimg, losses and ETA of the last tick, shown beside the progress bar
        self._saved_nimg: int | None = None  # where the newest snapshot written or loaded stands
        self._rollbacks = 0  # rollbacks since the last snapshot written

    # ------------------------------------------------------------------ setup

    def _make_phases(self) -> list[Phase]:
        """NVIDIA's phases; the main and regularisation phases of a network share its Adam (`self.optimizers`)."""
        o = self.opts
        phases = []
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        for name, module, params, lr, interval in (("G", self.G, self.G_params, o.glr, o.G_reg_interval),
                                                   ("D", self.D, self.D_params, o.dlr, o.D_reg_interval)):
            lr, betas = lazy_regularization(lr, o.betas, interval)
            opt = self.optimizers[name] = torch.optim.Adam(params, lr=lr, betas=betas, eps=o.eps)
            if interval is None:
                phases.append(Phase(name + "both", module, params, opt, 1))
            else:
                phases += [Phase(name + "main", module, params, opt, 1), Phase(name + "reg", module, params, opt, interval)]
        return phases

    def _report(self, name: str, values: torch.Tensor) -> None:
        self.collector.report(name, values)
        if name == "Loss/signs/real":
            self.ada_collector.report(name, values)

    def log(self, text: str) -> None:
        if self.env.rank == 0:
            self._log(text)
            append_line(self.run_dir / "log.txt", text)

    # ------------------------------------------------------------------ checkpoints

    def save_snapshot(self, path: Path) -> None:
        """Networks, optimizer moments, counters, augment p, path-length mean and open statistics (rank 0)."""
        opt_meta: dict[str, Any] = {}
        aux: dict[str, torch.Tensor] = {"pl_mean": self.loss.pl_mean}
        if self.augment is not None:
            aux["augment_p"] = self.augment.p
        for net, opt in self.optimizers.items():
            sd = opt.state_dict()
            opt_meta[net] = sd["param_groups"]
            for idx, st in sd["state"].items():
                for key, value in st.items():
                    aux[f"opt_{net}.{idx}.{key}"] = torch.as_tensor(value)
        st = self.state
        st.stats, st.ada_stats = self.collector.state(), self.ada_collector.state()
        D_state, references = snapshot_state(self.D.state_dict(), self.backbone_records)
        extra = {"training": {**st.__dict__, "optimizers": opt_meta}, "training_options": self.opts.to_dict(), **references}
        nets = {name: (network_spec(m), m.state_dict() if name != "D" else D_state)
                for name, m in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema))}
        save_checkpoint(path, nets, extra, aux)

    def load_snapshot(self, path: Path) -> None:
        """Continue exactly from a snapshot written by `save_snapshot`."""
        nets, extra, aux = read_snapshot(path)
        if "training" not in extra:
            raise ValueError(f"{path}: holds no training state (not a training snapshot); use it with --resume as a "
                             "network to fine-tune instead")
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            module.load_state_dict(restore_state(nets[name][1], extra, self.opts.feature_weights) if name == "D" else nets[name][1])
        self.loss.pl_mean = aux["pl_mean"].to(self.device)
        if self.augment is not None and "augment_p" in aux:
            self.augment.p.copy_(aux["augment_p"])
        training = dict(extra["training"])
        opt_meta = training.pop("optimizers")
        for net, opt in self.optimizers.items():
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in aux.items():
                parts = key.split(".")
                if parts[0] == f"opt_{net}":
                    state.setdefault(int(parts[1]), {})[parts[2]] = value
            groups = opt_meta[net]
            for g in groups:  # a continued run may have other settings for the same parameters
                g["lr"], g["betas"] = opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]
            opt.load_state_dict({"state": state, "param_groups": groups})
        self.state = LoopState(**training)
        self._nonfinite_grads.zero_()
        self.collector.load(self.state.stats)
        self.ada_collector.load(self.state.ada_stats)
        self._saved_nimg = self.state.cur_nimg

    def load_latest_snapshot(self) -> Path | None:
        """Continue from the newest snapshot that reads back whole (None: the run has none). One that does not (cut
        short, damaged, fails its checksum) is set aside as NAME.corrupt, said in the log, and the next older tried."""
        for path in reversed(snapshots(self.run_dir)):
            try:
                self.load_snapshot(path)
                return path
            except (ValueError, KeyError, TypeError, RuntimeError, OSError) as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                if self.env.rank == 0:
                    with contextlib.suppress(FileNotFoundError):
                        set_aside(path)
                self.log(f"warning: {path.name} cannot be read ({reason}); set aside as {path.name}{CORRUPT_SUFFIX}, "
                         "continuing from the snapshot before it")
        return None

    @property
    def finished(self) -> bool:
        """Whether the run has trained its --kimg."""
        return self.state.cur_nimg >= self.opts.kimg * 1000

    def load_networks_from(self, source: dict[str, torch.nn.Module]) -> None:
        """Transfer learning: copy the weights of `source` ({"G", "D", "G_ema"}; G_ema falls back to G)."""
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            src = source.get(name) or (None if name == "D" else source.get("G") if name == "G_ema" else source.get("G_ema"))
            if src is None:
                continue
            module.load_state_dict({k: v.to(self.device) for k, v in src.state_dict().items()})

    # ------------------------------------------------------------------ the loop

    def schedule(self, cur_nimg: int) -> Schedule:
        """Minibatch size, learning rates and level of detail at `cur_nimg` (fixed unless growing)."""
        o = self.opts
        return schedule(cur_nimg, self.dataset.resolution, o.growing, o.batch, o.batch_gpu, o.glr, o.dlr)

    def _apply_schedule(self, sched: Schedule) -> None:
        """Learning rates (with the lazy-regularisation factor) and, when growing, the networks' lod."""
        o, st = self.opts, self.state
        for name, lr, interval in (("G", sched.glr, o.G_reg_interval), ("D", sched.dlr, o.D_reg_interval)):
            for group in self.optimizers[name].param_groups:
                group["lr"] = lazy_regularization(lr, o.betas, interval)[0]
        if o.growing is None:
            return
        if st.lod is not None and o.growing.reset_optimizers and level_changed(st.lod, sched.lod):
            for opt in self.optimizers.values():
                opt.state.clear()
        st.lod = sched.lod
        for module in (self.G.synthesis, self.G_ema.synthesis, self.D):
            module.lod.fill_(sched.lod)

    def _minibatch_inputs(self, cur_nimg: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents and labels of every phase of this minibatch, the same on every process, drawn on the device."""
        o, device = self.opts, self.device
        g = torch.Generator(device=device).manual_seed(derive_seed(o.seed, cur_nimg, 0x5A))
        n = len(self.phases) * batch
        z = torch.randn([n, self.G.z_dim], generator=g, device=device)
        if self.labels is None:
            c = torch.zeros([n, 0], device=device)
        else:
            c = self.labels[torch.randint(len(self.labels), [n], generator=g, device=device)]
        return z, c

    def _chunks(self, x: torch.Tensor, batch_gpu: int) -> list[torch.Tensor]:
        """This process's rounds of one phase's global batch `x`."""
        per = len(x) // self.env.world_size
        return list(x[self.env.rank * per:(self.env.rank + 1) * per].to(self.device).split(batch_gpu))

    def _step(self, real_img: torch.Tensor, real_c: torch.Tensor) -> None:
        o, st = self.opts, self.state
        sched = self.schedule(st.cur_nimg)
        assert len(real_img) * self.env.world_size == sched.batch, f"got {len(real_img)} images for a minibatch of {sched.batch}"
        self._apply_schedule(sched)
        if o.growing is not None:
            real_img = fade_reals(real_img, sched.lod)
        batch = sched.batch
        all_z, all_c = self._minibatch_inputs(st.cur_nimg, batch)
        reals = list(real_img.split(sched.batch_gpu))
        real_cs = list(real_c.split(sched.batch_gpu))
        rounds = len(reals)
        for k, phase in enumerate(self.phases):
            if st.batch_idx % phase.interval != 0:
                continue
            zs = self._chunks(all_z[k * batch:(k + 1) * batch], sched.batch_gpu)
            cs = self._chunks(all_c[k * batch:(k + 1) * batch], sched.batch_gpu)
            for p in phase.params:
                p.requires_grad_(True)
            phase.opt.zero_grad(set_to_none=True)
            for r in range(rounds):
                torch.manual_seed(derive_seed(o.seed, st.cur_nimg, k, self.env.rank * rounds + r))
                self.loss.accumulate_gradients(phase.name, reals[r], real_cs[r], zs[r], cs[r],
                                               gain=phase.interval / rounds, cur_nimg=st.cur_nimg)
            for p in phase.params:
                p.requires_grad_(False)
            if phase.name in ("Greg", "Gboth"):
                self.loss.update_pl_mean()
            params = [p for p in phase.params if p.grad is not None]
            if params:
                flat = torch.cat([p.grad.flatten() for p in params])
                flat = self.env.sum_(flat) / self.env.world_size
                self._nonfinite_grads += (~torch.isfinite(flat)).sum()  # counted on the device, read at the tick
                flat = torch.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
                for p, grad in zip(params, flat.split([p.numel() for p in params])):
                    p.grad = grad.reshape(p.shape)
            phase.opt.step()

        if self.env.world_size > 1:  # W average and magnitude EMAs: keep the processes in agreement
            for b in self.G.buffers():
                if b.is_floating_point():
                    b.copy_(self.env.mean(b))
        beta = ema_beta(batch, o.ema_kimg, o.ema_rampup, st.cur_nimg)
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        st.cur_nimg += batch
        st.batch_idx += 1
        if o.aug == "ada" and st.batch_idx % o.ada_interval == 0:
            r_t = self.ada_collector.device_means(self.env).get("Loss/signs/real")
            self.augment.p.copy_(ada_update(self.augment.p, r_t, o.ada_target, batch, o.ada_interval, o.ada_kimg))

    def _grids(self) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        gw, gh = grid_size(self.dataset.resolution)
        idx = grid_indices(self.dataset, self.labels, gw, gh, self.opts.seed)
        images = from_uint8(torch.stack([self.dataset[i][0] for i in idx]))
        g = torch.Generator().manual_seed(derive_seed(self.opts.seed, 0x6D))
        z = torch.randn([len(idx), self.G.z_dim], generator=g)
        c = self.labels[idx] if self.labels is not None else torch.zeros([len(idx), 0])
        save_image_grid(images, self.run_dir / "reals.png", (gw, gh))
        return z, c, (gw, gh)

    @torch.no_grad()
    def _fakes(self, z: torch.Tensor, c: torch.Tensor, grid: tuple[int, int], path: Path) -> None:
        imgs = [self.G_ema(zz.to(self.device), cc.to(self.device), noise_mode="const").cpu()
                for zz, cc in zip(z.split(self.opts.batch_gpu), c.split(self.opts.batch_gpu))]
        save_image_grid(torch.cat(imgs), path, grid)

    def _metrics(self, snapshot: Path) -> dict[str, float]:
        results: dict[str, float] = {}
        for name in self.opts.metrics:
            res = compute(name, MetricOptions(G=self.G_ema, dataset=self.opts.data, mirror=self.opts.mirror, device=self.device,
                                              batch_size=self.opts.batch_gpu, seed=self.opts.seed, rank=self.env.rank,
                                              num_gpus=self.env.world_size, progress=self.progress))  # XL: uniform classes (fid.class_dist)
            if self.env.rank == 0:
                report_metric(res, self.run_dir, snapshot_pkl=str(snapshot))
                self.log(f"metric {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in res.results.items()) + f" ({res.total_time_str})")
            results.update(res.results)
        return results

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's minibatches from the images seen so far on (made again after a rollback)."""
        o, st, env = self.opts, self.state, self.env
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=RankBatches(InfiniteSampler(self.dataset, rank=0, num_replicas=1, seed=o.seed),
                                                     lambda nimg: self.schedule(nimg).batch, env.rank, env.world_size, st.cur_nimg),
            num_workers=o.workers, pin_memory=self.device.type == "cuda", prefetch_factor=2 if o.workers > 0 else None,
            persistent_workers=False,
        )
        return iter(loader)

    def run(self) -> TrainResult:
        """Train until --kimg (nothing to do for a finished run), or until Ctrl-C / SIGTERM, which saves a snapshot."""
        if self.finished:
            return TrainResult(self.run_dir, self.state.cur_nimg, False, latest_snapshot(self.run_dir))
        if self.env.rank == 0:
            self._prune_snapshots()  # a process killed between writing a snapshot and pruning left one too many
        writer = ScalarWriter(self.run_dir) if self.env.rank == 0 else None
        try:
            result = self._loop(writer)
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
        if writer is not None:
            writer.close()
        return result

    def _loop(self, writer: ScalarWriter | None) -> TrainResult:
        o, env = self.opts, self.env
        fresh = self.state.cur_nimg == 0
        grid_z = grid_c = grid = None
        if env.rank == 0:
            grid_z, grid_c, grid = self._grids()
            if fresh:
                self._fakes(grid_z, grid_c, grid, self.run_dir / "fakes_init.png")
        self._start_time = time.time() - self.state.total_time
        tick_start_time = time.time()
        maintenance = 0.0
        bar = None
        interrupted = False
        data = self._batches()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        with StopRequest() as stop:
            while True:
                st = self.state
                if self.progress and bar is None:
                    total = self.schedule(st.cur_nimg).batch if st.cur_tick == 0 and fresh else o.tick * 1000
                    bar = tqdm(total=int(total), unit="img", desc=f"tick {st.cur_tick} kimg {st.cur_nimg / 1000:.1f}", leave=False,
                               dynamic_ncols=True, postfix=self._last_summary or None)
                    bar.update(min(st.cur_nimg - st.tick_start_nimg, int(total)))
                real_img, real_c = next(data)
                real_img = from_uint8(real_img.to(self.device, non_blocking=True))
                nimg = st.cur_nimg
                self._step(real_img, real_c.to(self.device, non_blocking=True))
                if bar is not None:
                    bar.update(st.cur_nimg - nimg)
                done = self.finished
                stopping = env.any(stop.requested)
                if done or (st.cur_tick == 0 and fresh) or st.cur_nimg >= st.tick_start_nimg + o.tick * 1000:
                    # ---- tick (also when stopping: the minibatch that ends a tick keeps its stats line)
                    fresh = False
                    if bar is not None:
                        bar.close()
                        bar = None
                    stats = self.collector.means(env)
                    self._fold_nonfinite_grads()
                    line = self._tick_line(stats, time.time() - tick_start_time, maintenance)
                    if env.rank == 0:
                        self._write_tick(line, writer)
                    problems = self._nonfinite(stats)
                    if problems:
                        self._recover(problems, line)  # back to the newest snapshot, or TrainingStopped
                        data = self._batches()
                        tick_start_time, maintenance = time.time(), 0.0
                        if stopping:
                            interrupted = True
                            break
                        continue
                    maint_start = time.time()
                    if self.device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(self.device)
                    if done or st.cur_tick % o.snap == 0:
                        if env.rank == 0:
                            self._fakes(grid_z, grid_c, grid, self.run_dir / f"fakes{st.cur_nimg // 1000:06d}.png")
                        snapshot = self._snapshot(next_tick=True)
                        for name, value in (self._metrics(snapshot) if o.metrics else {}).items():
                            if writer is not None:
                                writer.add_scalar(f"Metrics/{name}", value, int(st.cur_nimg / 1e3))
                    else:
                        self._advance_tick()
                    if writer is not None:
                        writer.flush()
                    maintenance = time.time() - maint_start
                    tick_start_time = time.time()
                if done:
                    break
                if stopping:
                    interrupted = True
                    break
            if interrupted:
                self._save_on_stop()
        if bar is not None:
            bar.close()
        return TrainResult(self.run_dir, self.state.cur_nimg, interrupted, latest_snapshot(self.run_dir))

    def _save_on_stop(self) -> None:
        """The snapshot of a run stopped by Ctrl-C / SIGTERM: none when the newest one stands here already, or when
        the state is not finite (the run continues from the newest good snapshot)."""
        st = self.state
        self._fold_nonfinite_grads()
        if self._saved_nimg == st.cur_nimg:
            self.log(f"interrupted at {st.cur_nimg / 1000:.3f} kimg; continue with: stylegan train --resume {self.run_dir}")
            return
        problems = self._nonfinite({})
        if problems:
            self.log(f"interrupted at {st.cur_nimg / 1000:.3f} kimg with non-finite {', '.join(problems)}: nothing saved; "
                     f"continue from the newest good snapshot with: stylegan train --resume {self.run_dir}")
            return
        saved = self._snapshot(next_tick=False)
        self.log(f"interrupted at {st.cur_nimg / 1000:.3f} kimg; saved {saved.name}; "
                 f"continue with: stylegan train --resume {self.run_dir}")

    # ------------------------------------------------------------------ non-finite values

    def _state_tensors(self) -> dict[str, list[torch.Tensor]]:
        """Everything a snapshot stores that must stay finite, by what a message calls it."""
        groups = {name: [t for t in [*m.parameters(), *m.buffers()] if t.is_floating_point()]
                  for name, m in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema))}
        groups["optimizer states"] = [v for opt in self.optimizers.values() for s in opt.state.values()
                                      for v in s.values() if torch.is_tensor(v) and v.is_floating_point()]
        groups["running statistics"] = [self.loss.pl_mean, *self.collector.accumulators(), *self.ada_collector.accumulators(),
                                        *([self.augment.p] if self.augment is not None else [])]
        return {k: v for k, v in groups.items() if v}

    def _nonfinite(self, stats: dict[str, float]) -> list[str]:
        """What is NaN or infinite: the tick's mean losses (`stats`), the weights of G / D / G_ema, the optimizer
        moments, the running statistics. Read at the tick with one host synchronisation, the same on every process."""
        groups = self._state_tensors()
        flags = torch.stack([torch.stack([t.isfinite().all() for t in ts]).all() for ts in groups.values()])
        bad_groups = self.env.sum_((~flags).to(torch.float32)).cpu().tolist()
        problems = [k for k, v in stats.items() if k.startswith("Loss/") and not math.isfinite(v)]
        problems += [("weights of " if name in ("G", "D", "G_ema") else "") + name for name, bad in zip(groups, bad_groups) if bad]
        return problems

    def _recover(self, problems: list[str], line: dict[str, Any]) -> None:
        """After a tick with non-finite values: continue from the newest good snapshot (`--on-nan rollback`, at most
        MAX_ROLLBACKS times without a snapshot written in between) or stop (`--on-nan stop`); nothing non-finite is
        ever saved."""
        where = f"tick {line['tick']} (kimg {line['kimg']:.3f}): non-finite {', '.join(problems)}"
        newest = latest_snapshot(self.run_dir)
        if self.opts.on_nan == "stop":
            raise TrainingStopped(f"{where}; stopped (--on-nan stop), nothing saved" + (
                f"; the newest good snapshot is {newest.name}; continue with: stylegan train --resume {self.run_dir}" if newest else ""))
        self._rollbacks += 1
        if self._rollbacks > MAX_ROLLBACKS:
            raise TrainingStopped(f"{where} again after {MAX_ROLLBACKS} rollbacks: the run diverges (try a lower --glr/--dlr or a "
                                  f"higher --gamma in a new run); {self.run_dir} keeps its snapshots up to "
                                  f"{newest.name if newest else '(none)'}")
        rollbacks = self._rollbacks
        snapshot = self.load_latest_snapshot()
        if snapshot is None:
            raise TrainingStopped(f"{where}; no snapshot to roll back to in {self.run_dir}")
        self._rollbacks = rollbacks
        if self.env.rank == 0:
            truncate_stats(self.run_dir, self.state.cur_tick)
        self.log(f"warning: {where}; rolled back to {snapshot.name} (rollback {rollbacks} of at most {MAX_ROLLBACKS})")

    def write_summary(self) -> None:
        """After training: samples.png (a row per class), truncation.png (a psi sweep), losses.png (curves)."""
        class_grid(self.G_ema, self.run_dir / "samples.png", per_class=10, seed=self.opts.seed, device=self.device,
                   class_names=self.dataset.class_names if self.G_ema.c_dim else None)
        truncation_sweep(self.G_ema, self.run_dir / "truncation.png", seed=self.opts.seed, device=self.device)
        lines = read_stats(self.run_dir)
        keys = ["Loss/G/loss", "Loss/D/loss", "Loss/scores/real", "Loss/scores/fake", "Loss/r1_penalty", "Loss/pl_penalty"]
        keys += ["Progress/augment"] if self.augment is not None else []
        keys = [k for k in keys if any(k in ln for ln in lines)]
        plot_curves(lines, self.run_dir / "losses.png", keys, title=self.run_dir.name)

    def _fold_nonfinite_grads(self) -> None:
        """Add the device's count of zeroed gradient entries to the state (a host read: at the tick only)."""
        self.state.nonfinite_grads += int(self._nonfinite_grads)
        self._nonfinite_grads.zero_()

    def _advance_tick(self) -> None:
        self.state.cur_tick += 1
        self.state.tick_start_nimg = self.state.cur_nimg
        self.state.nonfinite_grads = 0

    def _snapshot(self, next_tick: bool) -> Path:
        if next_tick:
            self._advance_tick()
        path = self.run_dir / snapshot_name(self.state.cur_nimg)
        self.state.total_time = time.time() - self._start_time
        if self.env.rank == 0:
            self.save_snapshot(path)
            self._prune_snapshots()
        self._saved_nimg, self._rollbacks = self.state.cur_nimg, 0
        return path

    def _prune_snapshots(self) -> None:
        for p in snapshots(self.run_dir)[:-self.opts.keep_snapshots]:
            p.unlink(missing_ok=True)

    def _tick_line(self, stats: dict[str, float], sec_tick: float, maintenance: float) -> dict[str, Any]:
        """The stats.jsonl record of the tick that ends here."""
        st, now = self.state, time.time()
        tick_kimg = (st.cur_nimg - st.tick_start_nimg) / 1000
        return {
            "tick": st.cur_tick, "kimg": st.cur_nimg / 1000, "timestamp": now,
            "Timing/total_sec": now - self._start_time, "Timing/sec_per_tick": sec_tick,
            "Timing/sec_per_kimg": sec_tick / max(tick_kimg, 1e-8), "Timing/maintenance_sec": maintenance,
            "Resources/peak_cpu_mem_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "Resources/peak_gpu_mem_gb": (torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else 0.0),
            "Progress/augment": float(self.augment.p) if self.augment is not None else 0.0,
            "Progress/lr_G": self.optimizers["G"].param_groups[0]["lr"],
            "Progress/lr_D": self.optimizers["D"].param_groups[0]["lr"],
            "Progress/nonfinite_grads": st.nonfinite_grads,
            "Progress/lod": st.lod or 0.0,
            "Loss/pl_mean": float(self.loss.pl_mean),
            **stats,
        }

    def _write_tick(self, line: dict[str, Any], writer: ScalarWriter | None) -> None:
        """The tick's line in stats.jsonl, TensorBoard and the log."""
        append_line(self.run_dir / "stats.jsonl", json.dumps(line))
        if writer is not None:
            for key, value in line.items():
                if key not in ("tick", "kimg", "timestamp") and isinstance(value, (int, float)) and math.isfinite(value):
                    writer.add_scalar(key, float(value), int(line["kimg"]), wall_time=line["timestamp"])
        parts = tick_console_parts(line, self.opts.kimg, cuda=self.device.type == "cuda", augment=self.augment is not None,
                                   growing=self.opts.growing is not None)
        self.log("  ".join(parts))
        self._last_summary = "  ".join(p for p in parts[4:] if not p.startswith(("maintenance", "cpumem", "gpumem")))
        if line["Progress/nonfinite_grads"]:
            self.log(f"warning: tick {line['tick']} (kimg {line['kimg']:.3f}): {line['Progress/nonfinite_grads']} non-finite "
                     "gradient entries were zeroed")

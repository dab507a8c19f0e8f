"""Project an image into W or W+ of a generator (StyleGAN2 paper, appendix D; NVIDIA's projector.py) and, with
--pti-steps, tune a copy of the generator around the projection (pivotal tuning, as StyleGAN-XL's run_inversion.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.latents import LatentFileError
from ..editing.projection import (SPACES, W_NOISE, ProjectionResult, ProjectionStep, check_resume, label_name, load_projection,
                                  noise_maps_set, project, save_projection)
from ..editing.pti import (LOCALITY_WEIGHT, PTI_FILE, PTI_STEPS, REG_INPUTS, PTIFileError, PTIResult, PTIStep, load_pti,
                           pivotal_tuning, save_pti, tuning_ids)
from ..editing.pti import check_resume as check_pti_resume
from ..io.checkpoint import atomic_write_bytes
from ..io.images import hwc_uint8, save_png
from ..io.load import load_network
from ..models import stylegan_xl
from ..models.common import Generator
from .common import (CliError, add_projection_args, class_label, load_target, load_vgg, metric_name, non_negative_float, positive_int,
                     resolve_device, to_pil, uint8_to_target)


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("project", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--target", required=True, type=Path, help="image to project (centre-cropped and resized to the network)")
    add_projection_args(p)
    p.add_argument("--space", choices=SPACES, default="w", help="w: one w for every layer (default, the paper's); w+: one per layer")
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4: target | projection, one frame per step")
    p.add_argument("--resume", type=Path, default=None, metavar="FILE",
                   help="projected_w.npz of an earlier run: an unfinished run continues exactly, a finished one restarts the schedule from it")
    p.add_argument("--w-noise", type=non_negative_float, default=None, metavar="F",
                   help="initial std of the noise added to w, in units of sigma_w (default 0.05; 0 for StyleGAN-XL, as its run_inversion.py)")
    p.add_argument("--pti-steps", type=positive_int, nargs="?", const=PTI_STEPS, default=None, metavar="N",
                   help=f"then tune a copy of the generator around the projection for N steps (pivotal tuning; {PTI_STEPS} "
                        f"without N) and write it to {PTI_FILE}")
    p.add_argument("--pti-reg", type=non_negative_float, default=None, metavar="L",
                   help=f"weight of the locality regulariser of --pti-steps (default {LOCALITY_WEIGHT:g}; 0 = off)")
    p.add_argument("--pti-reg-input", choices=REG_INPUTS, default=None,
                   help="pixels the regulariser's distance sees: xl (default, StyleGAN-XL's: [-1, 1] where [0, 255] is "
                        "expected, which leaves it almost without effect) or rescaled ([0, 255])")
    p.add_argument("--outdir", required=True, type=Path,
                   help="where to write projected_w.npz, proj.png, target.png, projection.json (and G_pti.safetensors, proj_pti.png)")
    p.set_defaults(func=run)


@contextlib.contextmanager
def ctrl_c_stops() -> Iterator[threading.Event]:
    """While active, the first Ctrl-C sets the event (the projection stops after its step); a second one aborts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace) -> None:
    _check_pti_args(args)
    device = resolve_device(args.device)
    G = _generator(args.network, device)
    c = _label(G, args.class_idx, device)
    target_u8 = load_target(args.target, G)
    resume = _load_resume(args, G, c) if args.resume is not None else None
    # With --pti-steps a finished projection is the pivot as it is, and an unfinished tuning saved beside it continues.
    pti_resume = _load_pti_resume(args, G, target_u8, resume) if resume is not None and resume.finished else None
    run_projection = resume is None or not resume.finished or args.pti_steps is None
    num_steps = args.num_steps or 1000
    w_noise = args.w_noise if args.w_noise is not None else (0.0 if isinstance(G, stylegan_xl.Generator) else W_NOISE)
    vgg = load_vgg(args, device, "project")
    args.outdir.mkdir(parents=True, exist_ok=True)
    save_png(to_pil(target_u8), args.outdir / "target.png")

    writer = None
    if args.save_video:
        try:
            from ..io.video import VideoWriter
        except ImportError as e:
            raise CliError(f"--save-video: the video writer is not available ({e})") from None
        writer = VideoWriter(args.outdir / "proj.mp4", fps=30)
    target = uint8_to_target(target_u8)
    start = time.perf_counter()
    tuned: PTIResult | None = None
    with contextlib.ExitStack() as stack, ctrl_c_stops() as stop:
        if writer is not None:
            stack.enter_context(writer)
        video_target = np.repeat(target_u8, 3, axis=2) if target_u8.shape[2] == 1 else target_u8[:, :, :3]

        def frame(render: Callable[[], torch.Tensor]) -> None:
            if writer is not None:
                img = hwc_uint8(render())
                img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
                writer.append(np.concatenate([video_target, img], axis=1))

        result = resume
        if run_projection:
            done = resume.step if resume is not None and not resume.finished else 0
            bar = stack.enter_context(tqdm(total=resume.num_steps if done else num_steps, initial=done, desc="project",
                                           unit="step", disable=None))

            def on_step(s: ProjectionStep) -> bool:
                bar.update(1)
                bar.set_postfix(dist=f"{s.distance:.4f}")
                frame(s.render)
                return stop.is_set()

            try:
                result = project(G, target, num_steps=num_steps, space=args.space, distance=args.distance, vgg=vgg, c=c,
                                 seed=args.seed, noise_reg=args.noise_reg, w_noise=w_noise, resume=resume, callback=on_step)
            except ValueError as e:
                raise CliError(f"--resume {args.resume}: {e}" if resume is not None else str(e)) from None
        assert result is not None
        seconds = time.perf_counter() - start
        write_outputs(args.outdir, G, result, seconds)
        if args.pti_steps is not None and result.finished and not stop.is_set():
            tuned = _tune(args, G, target, result, vgg, pti_resume, stack, stop, frame)
    _report(args, result, seconds, tuned, time.perf_counter() - start - seconds, writer)


def _check_pti_args(args: argparse.Namespace) -> None:
    """Flags of pivotal tuning that mean nothing without --pti-steps (their values are checked while parsing)."""
    for flag, value in (("--pti-reg", args.pti_reg), ("--pti-reg-input", args.pti_reg_input)):
        if value is not None and args.pti_steps is None:
            raise CliError(f"{flag} applies to pivotal tuning: add --pti-steps")


def _generator(path: str, device: torch.device) -> Generator:
    net = load_network(path, device=device)
    if net.G_ema is None and net.G is None:
        raise CliError(f"--network {path}: holds no generator (G or G_ema) to project into or tune, only "
                       f"{', '.join(net.networks()) or 'nothing'}")
    return net.generator


def _label(G: Generator, class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    if isinstance(G, stylegan_xl.Generator) and G.c_dim > 0 and class_idx is None:
        raise CliError(f"this StyleGAN-XL network is class-conditional (c_dim={G.c_dim}): pass --class K, the target's class "
                       "(StyleGAN-XL's own inversion picks it with a DeiT classifier; project does not do that yet)")
    return class_label(G.c_dim, class_idx, device)


def _load_resume(args: argparse.Namespace, G: Generator, c: torch.Tensor | None) -> ProjectionResult:
    """--resume read and checked against the network, the flags and the label, before anything is written."""
    try:
        resume = load_projection(args.resume)
    except LatentFileError as e:
        raise CliError(f"--resume {e}") from None
    if resume.space != args.space:
        raise CliError(f"--resume {args.resume}: a projection into {resume.space}, but --space is {args.space}")
    if resume.c is not None and (c is None or not torch.equal(resume.c, c.cpu())):
        flag = f"--class {args.class_idx}" if args.class_idx is not None else "--class"
        raise CliError(f"{flag}: {args.resume} was projected with {label_name(resume.c)}; pass the same --class")
    if not resume.finished:
        if args.num_steps not in (None, resume.num_steps):
            raise CliError(f"--num-steps {args.num_steps}: {args.resume} is an unfinished run of {resume.num_steps} "
                           "steps, which continues its own schedule; omit --num-steps")
        if resume.metric != args.distance:
            raise CliError(f"--distance {args.distance}: {args.resume} is an unfinished run with --distance {resume.metric}")
    try:
        check_resume(resume, G, args.space, args.distance, c)
    except ValueError as e:
        raise CliError(f"--resume {args.resume}: {e}") from None
    return resume


def _load_pti_resume(args: argparse.Namespace, G: Generator, target_u8: np.ndarray, resume: ProjectionResult) -> PTIResult | None:
    """The unfinished tuning saved beside a finished --resume file, checked against this run (None when there is none
    or --pti-steps is not given; a finished tuning is redone from the network)."""
    if args.pti_steps is None:
        return None
    if args.num_steps not in (None, resume.num_steps):
        raise CliError(f"--num-steps {args.num_steps}: {args.resume} is a finished projection, which --pti-steps tunes "
                       "around as it is; to project anew from it, run without --pti-steps first")
    path = args.resume.parent / PTI_FILE
    if not path.is_file():
        return None
    try:
        state = load_pti(path)
    except PTIFileError as e:
        raise CliError(f"--resume: {e}") from None
    if state.finished:
        return None
    if args.pti_steps != state.num_steps:
        raise CliError(f"--pti-steps {args.pti_steps}: {path} is an unfinished tuning of {state.num_steps} steps, which "
                       f"continues its own schedule; pass --pti-steps {state.num_steps}")
    try:
        check_pti_resume(state, tuning_ids(G, uint8_to_target(target_u8), resume.ws, resume.noise), args.distance)
    except PTIFileError as e:
        raise CliError(f"--resume: {path}: {e}") from None
    return state


def _tune(args: argparse.Namespace, G: Generator, target: torch.Tensor, pivot: ProjectionResult, vgg: torch.nn.Module | None,
          resume: PTIResult | None, stack: contextlib.ExitStack, stop: threading.Event,
          frame: Callable[[Callable[[], torch.Tensor]], None]) -> PTIResult:
    """Pivotal tuning around the projection; writes G_pti.safetensors and proj_pti.png."""
    done = resume.step if resume is not None else 0
    bar = stack.enter_context(tqdm(total=resume.num_steps if resume is not None else args.pti_steps, initial=done,
                                   desc="pti", unit="step", disable=None))

    def on_step(s: PTIStep) -> bool:
        bar.update(1)
        bar.set_postfix(dist=f"{s.distance:.4f}", mse255=f"{s.mse:.1f}")
        frame(s.render)
        return stop.is_set()

    tuned = pivotal_tuning(G, target, pivot.ws, noise=pivot.noise, num_steps=args.pti_steps, distance=args.distance, vgg=vgg,
                           seed=args.seed, reg_weight=LOCALITY_WEIGHT if args.pti_reg is None else args.pti_reg,
                           reg_input=args.pti_reg_input or REG_INPUTS[0], resume=resume, callback=on_step)
    save_pti(args.outdir / PTI_FILE, tuned)
    with torch.no_grad(), noise_maps_set(tuned.G, pivot.noise):
        img = tuned.G.synthesis(pivot.ws.to(next(tuned.G.parameters()).device), noise_mode="const")[0].float()
    save_png(to_pil(hwc_uint8(img)), args.outdir / "proj_pti.png")
    return tuned


def _report(args: argparse.Namespace, result: ProjectionResult, seconds: float, tuned: PTIResult | None, pti_seconds: float,
            writer: object | None) -> None:
    """projection.json's tuning section, and what the run did on stdout (and a note on a stale tuned network)."""
    what = metric_name(result.metric)
    video = f", {Path(writer.path).name}" if writer is not None else ""  # type: ignore[attr-defined]
    out = args.outdir / "projected_w.npz"
    print(f"{what}: {result.distance:.6f} after {result.step}/{result.num_steps} steps ({seconds:.1f} s); "
          f"wrote {out}, proj.png, target.png, projection.json" + ("" if tuned is not None else video))
    if tuned is not None:
        info = json.loads((args.outdir / "projection.json").read_text())
        info["pti"] = {"distance_before": tuned.distance_before, "distance": tuned.distance, "metric": tuned.metric,
                       "steps": tuned.step, "num_steps": tuned.num_steps, "finished": tuned.finished,
                       "learning_rate": tuned.learning_rate, "reg_weight": tuned.reg_weight, "reg_alpha": tuned.reg_alpha,
                       "reg_psi": tuned.reg_psi, "reg_input": tuned.reg_input, "seconds": round(pti_seconds, 3)}
        atomic_write_bytes(args.outdir / "projection.json", (json.dumps(info, indent=2) + "\n").encode())
        print(f"pivotal tuning: {what} {tuned.distance_before:.6f} -> {tuned.distance:.6f} after {tuned.step}/{tuned.num_steps} "
              f"steps ({pti_seconds:.1f} s); wrote {args.outdir / PTI_FILE}, proj_pti.png{video}")
    elif (args.outdir / PTI_FILE).is_file():
        print(f"note: {args.outdir / PTI_FILE} is left from an earlier run, tuned around another projection", file=sys.stderr)
    if result.interrupted or (tuned is not None and tuned.interrupted):
        step = f"tuning step {tuned.step}" if tuned is not None and tuned.interrupted else f"step {result.step}"
        print(f"interrupted: the state after {step} is saved; to continue, run the same command with --resume {out}")
    elif args.pti_steps is not None and tuned is None:
        print(f"interrupted before the tuning: the projection is saved; to tune, run the same command with --resume {out}")


def write_outputs(outdir: Path, G: Generator, result: ProjectionResult, seconds: float) -> None:
    """projected_w.npz (resumable), proj.png (rendered with the optimised noise maps) and projection.json."""
    save_projection(outdir / "projected_w.npz", result)
    with torch.no_grad(), noise_maps_set(G, result.noise):
        img = G.synthesis(result.ws.to(next(G.parameters()).device), noise_mode="const")[0].float()
    save_png(to_pil(hwc_uint8(img)), outdir / "proj.png")
    info = {"distance": result.distance, "metric": result.metric, "metric_name": metric_name(result.metric),
            "steps": result.step, "num_steps": result.num_steps, "finished": result.finished, "space": result.space,
            "w_noise": result.w_noise, "label": label_name(result.c), "seconds": round(seconds, 3)}
    atomic_write_bytes(outdir / "projection.json", (json.dumps(info, indent=2) + "\n").encode())

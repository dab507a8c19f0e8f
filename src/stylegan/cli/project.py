"""Project an image into W or W+ of a generator (StyleGAN2 paper, appendix D; NVIDIA's projector.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..editing.latents import LatentFileError
from ..editing.projection import (SPACES, ProjectionResult, ProjectionStep, check_resume, load_projection, noise_maps_set, project,
                                  save_projection)
from ..io.checkpoint import atomic_write_bytes
from ..io.images import hwc_uint8, save_png
from ..io.load import load_network
from ..models.common import Generator
from .common import CliError, add_projection_args, class_label, load_target, load_vgg, metric_name, resolve_device, to_pil, uint8_to_target

def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    p = sub.add_parser("project", help=help, description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--target", required=True, type=Path, help="image to project (centre-cropped and resized to the network)")
    add_projection_args(p)
    p.add_argument("--space", choices=SPACES, default="w", help="w: one w for every layer (default, the paper's); w+: one per layer")
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4: target | projection, one frame per step")
    p.add_argument("--resume", type=Path, default=None, metavar="FILE",
                   help="projected_w.npz of an earlier run: an unfinished run continues exactly, a finished one restarts the schedule from it")
    p.add_argument("--outdir", required=True, type=Path, help="where to write projected_w.npz, proj.png, target.png, projection.json")
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
    device = resolve_device(args.device)
    G = load_network(args.network, device=device).generator
    c = class_label(G.c_dim, args.class_idx, device)
    target_u8 = load_target(args.target, G)
    resume = None
    if args.resume is not None:
        try:
            resume = load_projection(args.resume)
        except LatentFileError as e:
            raise CliError(f"--resume {e}") from None
        if resume.space != args.space:
            raise CliError(f"--resume {args.resume}: a projection into {resume.space}, but --space is {args.space}")
        if not resume.finished:
            if args.num_steps not in (None, resume.num_steps):
                raise CliError(f"--num-steps {args.num_steps}: {args.resume} is an unfinished run of {resume.num_steps} "
                               "steps, which continues its own schedule; omit --num-steps")
            if resume.metric != args.distance:
                raise CliError(f"--distance {args.distance}: {args.resume} is an unfinished run with --distance {resume.metric}")
        try:
            check_resume(resume, G, args.space, args.distance)  # before anything is written
        except ValueError as e:
            raise CliError(f"--resume {args.resume}: {e}") from None
    num_steps = args.num_steps or 1000
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
    start = time.perf_counter()
    with contextlib.ExitStack() as stack, ctrl_c_stops() as stop:
        if writer is not None:
            stack.enter_context(writer)
        done = resume.step if resume is not None and not resume.finished else 0
        total = resume.num_steps if done else num_steps
        bar = stack.enter_context(tqdm(total=total, initial=done, desc="project", unit="step", disable=None))
        video_target = np.repeat(target_u8, 3, axis=2) if target_u8.shape[2] == 1 else target_u8[:, :, :3]

        def on_step(s: ProjectionStep) -> bool:
            bar.update(1)
            bar.set_postfix(dist=f"{s.distance:.4f}")
            if writer is not None:
                frame = hwc_uint8(s.render())
                frame = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame[:, :, :3]
                writer.append(np.concatenate([video_target, frame], axis=1))
            return stop.is_set()

        try:
            result = project(G, uint8_to_target(target_u8), num_steps=num_steps, space=args.space, distance=args.distance,
                             vgg=vgg, c=c, seed=args.seed, noise_reg=args.noise_reg, resume=resume, callback=on_step)
        except ValueError as e:
            raise CliError(f"--resume {args.resume}: {e}" if resume is not None else str(e)) from None
    seconds = time.perf_counter() - start
    write_outputs(args.outdir, G, result, seconds)
    what = metric_name(result.metric)
    print(f"{what}: {result.distance:.6f} after {result.step}/{result.num_steps} steps ({seconds:.1f} s); "
          f"wrote {args.outdir / 'projected_w.npz'}, proj.png, target.png, projection.json"
          + (f", {Path(writer.path).name}" if writer is not None else ""))
    if result.interrupted:
        print(f"interrupted: the state after step {result.step} is saved; to continue, run the same command "
              f"with --resume {args.outdir / 'projected_w.npz'}")


def write_outputs(outdir: Path, G: Generator, result: ProjectionResult, seconds: float) -> None:
    """projected_w.npz (resumable), proj.png (rendered with the optimised noise maps) and projection.json."""
    save_projection(outdir / "projected_w.npz", result)
    with torch.no_grad(), noise_maps_set(G, result.noise):
        img = G.synthesis(result.ws.to(next(G.parameters()).device), noise_mode="const")[0].float()
    save_png(to_pil(hwc_uint8(img)), outdir / "proj.png")
    info = {"distance": result.distance, "metric": result.metric, "metric_name": metric_name(result.metric),
            "steps": result.step, "num_steps": result.num_steps, "finished": result.finished, "space": result.space,
            "seconds": round(seconds, 3)}
    atomic_write_bytes(outdir / "projection.json", (json.dumps(info, indent=2) + "\n").encode())

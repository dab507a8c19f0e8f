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
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..editing.latents import LatentFileError
from ..editing.projection import DISTANCES, SPACES, ProjectionResult, ProjectionStep, load_projection, project, save_projection
from ..io.checkpoint import atomic_write_bytes
from ..io.load import load_network
from ..metrics.detectors import DetectorUnavailable
from .common import CliError, resolve_device
from .generate import class_label, to_pil, to_uint8

_8BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
_MODES_FOR = {1: _8BIT_MODES, 3: _8BIT_MODES, 4: ("RGBA", "LA", "PA")}  # image modes that convert to G's channels


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="project an image into W / W+ (StyleGAN2 appendix D)", description=__doc__)
    p.add_argument("--network", required=True, help="checkpoint: .safetensors, official .pkl, rosinality .pt, or folder")
    p.add_argument("--target", required=True, type=Path, help="image to project (centre-cropped and resized to the network)")
    add_projection_args(p)
    p.add_argument("--space", choices=SPACES, default="w", help="w: one w for every layer (default, the paper's); w+: one per layer")
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4: target | projection, one frame per step")
    p.add_argument("--resume", type=Path, default=None, metavar="FILE",
                   help="projected_w.npz of an earlier run: an unfinished run continues exactly, a finished one restarts the schedule from it")
    p.add_argument("--outdir", required=True, type=Path, help="where to write projected_w.npz, proj.png, target.png, projection.json")
    p.set_defaults(func=run)


def add_projection_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `project` and `attribute`."""
    p.add_argument("--num-steps", type=int, default=None, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=int, default=303, help="seed of the initial noise maps and of the w noise (default 303)")
    p.add_argument("--noise-reg", type=float, default=1e5, help="weight of the noise autocorrelation penalty (default 1e5)")
    p.add_argument("--distance", choices=DISTANCES, default="lpips",
                   help="lpips (LPIPS-VGG16, the paper's; needs the VGG16 weights) or mse (pixel MSE, not LPIPS)")
    p.add_argument("--vgg16", action="append", type=Path, default=None, metavar="PATH",
                   help="VGG16 + LPIPS weights (torchvision vgg16-397923af.pth and LPIPS vgg.pth; repeat the flag for each "
                        "file); default: the cache, downloaded when missing")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class label of a conditional network")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")


def metric_name(distance: str) -> str:
    """How outputs name the distance."""
    return "LPIPS (VGG16)" if distance == "lpips" else "pixel MSE in [-1, 1] units (not LPIPS)"


def load_target(path: Path, G: torch.nn.Module) -> np.ndarray:
    """Image file -> HWC uint8 with G's channels, centre-cropped to a square and Lanczos-resized to G's resolution."""
    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CliError(f"{path}: cannot read this image ({e})".replace("\n", " ")) from None
    channels = G.img_channels
    if img.mode not in _MODES_FOR.get(channels, ()):
        raise CliError(f"{path}: a {img.mode} image cannot be matched to the network's {channels} channel(s)")
    img = img.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])  # RGB -> L for 1-channel networks, alpha dropped for RGB
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((G.img_resolution, G.img_resolution), Image.LANCZOS)
    arr = np.array(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def uint8_to_target(arr: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> [C, H, W] float32 in [-1, 1]."""
    return torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32) / 127.5 - 1


def load_vgg(args: argparse.Namespace, device: torch.device, command: str) -> torch.nn.Module | None:
    """The LPIPS VGG16 for --distance lpips (None for mse); a one-line CliError when its weights cannot be loaded."""
    if args.distance != "lpips":
        return None
    from ..metrics.vgg import load_vgg16
    try:
        return load_vgg16(args.vgg16, lpips=True, device=device, what=f"stylegan {command} --distance lpips")
    except DetectorUnavailable as e:
        raise CliError(f"LPIPS needs the VGG16 + LPIPS weights, which cannot be loaded: {e}. Pass them with "
                       "--vgg16 PATH (repeatable), or use --distance mse (pixel MSE, not LPIPS)") from None


def check_projection_args(args: argparse.Namespace) -> None:
    if args.num_steps is not None and args.num_steps < 1:
        raise CliError(f"--num-steps {args.num_steps}: must be >= 1")
    if not args.noise_reg >= 0:
        raise CliError(f"--noise-reg {args.noise_reg}: must be >= 0")


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
    check_projection_args(args)
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
    num_steps = args.num_steps or 1000
    vgg = load_vgg(args, device, "project")
    args.outdir.mkdir(parents=True, exist_ok=True)
    to_pil(target_u8).save(args.outdir / "target.png")

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
                frame = to_uint8(s.render())
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


def write_outputs(outdir: Path, G: torch.nn.Module, result: ProjectionResult, seconds: float) -> None:
    """projected_w.npz (resumable), proj.png (rendered with the optimised noise maps) and projection.json."""
    save_projection(outdir / "projected_w.npz", result)
    with torch.no_grad(), optimised_noise(G, result.noise):
        img = G.synthesis(result.ws.to(next(G.parameters()).device), noise_mode="const")[0].float()
    to_pil(to_uint8(img)).save(outdir / "proj.png")
    info = {"distance": result.distance, "metric": result.metric, "metric_name": metric_name(result.metric),
            "steps": result.step, "num_steps": result.num_steps, "finished": result.finished, "space": result.space,
            "seconds": round(seconds, 3)}
    atomic_write_bytes(outdir / "projection.json", (json.dumps(info, indent=2) + "\n").encode())


@contextlib.contextmanager
def optimised_noise(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily set G.synthesis's noise_const buffers to `noise`."""
    bufs = dict(G.synthesis.named_buffers())
    saved = {k: bufs[k].clone() for k in noise}
    with torch.no_grad():
        for k, v in noise.items():
            bufs[k].copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                bufs[k].copy_(v)

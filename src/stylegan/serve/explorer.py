"""The explorer's state: loaded networks, stored latents, background projections, and the render worker."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..editing.latents import LatentFileError, load_projected_w
from ..editing.projection import (DISTANCES, SPACES, ProjectionStep, image_to_target, load_projected_noise,
                                  noise_maps_set, project)
from ..io.load import load_network
from .render import Frame, NetworkSlot, RenderError, RenderParams, encode, frame_ws, open_slot, parse_params, render
from .worker import RenderWorker

MAX_PROJECTION_STEPS = 10000


@dataclass
class ProjectionJob:
    """A projection running on its own thread; `latent` names the result once it is done."""

    id: str
    network: str
    num_steps: int
    step: int = 0
    distance: float | None = None
    done: bool = False
    error: str | None = None
    latent: str | None = None
    started: float = field(default_factory=time.perf_counter)
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "network": self.network, "step": self.step, "num_steps": self.num_steps,
                "distance": self.distance, "done": self.done, "error": self.error, "latent": self.latent,
                "seconds": round(time.perf_counter() - self.started, 1)}


class Explorer:
    """Networks by name, each with its stored latents; every forward pass of a loaded network runs on `worker`
    except projections, which optimise a private copy on their own threads."""

    def __init__(self, device: torch.device, max_upload: int = 32 << 20) -> None:
        self.device = device
        self.max_upload = max_upload
        self.slots: dict[str, NetworkSlot | None] = {}  # None: a name reserved while its network loads
        self.noise: dict[tuple[str, str], dict[str, torch.Tensor]] = {}  # (network, latent) -> optimised noise maps
        self.jobs: dict[str, ProjectionJob] = {}
        self.worker = RenderWorker()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the projections (after their current step) and the render worker."""
        for job in self.jobs.values():
            job.cancel.set()
        for job in self.jobs.values():
            if job.thread is not None:
                job.thread.join()
        self.worker.stop()

    # ------------------------------------------------------------------------- networks

    def load(self, path: str) -> NetworkSlot:
        """Load a network (NetworkLoadError, one line, when it cannot be read) under a unique name."""
        G = load_network(path, device=self.device).generator
        stem = Path(path).stem or Path(path).name or "network"
        with self._lock:
            name = stem
            for k in itertools.count(2):
                if name not in self.slots:
                    break
                name = f"{stem}-{k}"
            self.slots[name] = None  # reserve the name
        try:
            slot = self.worker.call(lambda: open_slot(name, str(path), G, self.device))
        except BaseException:
            with self._lock:
                del self.slots[name]
            raise
        with self._lock:
            self.slots[name] = slot
        return slot

    def networks(self) -> list[dict[str, Any]]:
        return [slot.info() for slot in self.slots.values() if slot is not None]

    def slot(self, name: str) -> NetworkSlot:
        """The loaded network `name`; RenderError naming the loaded ones otherwise."""
        slot = self.slots.get(name)
        if slot is None:
            raise RenderError(f"network: {name!r} is not loaded (loaded: {', '.join(self.slots) or 'none'})")
        return slot

    # ------------------------------------------------------------------------- frames

    def render(self, params: dict[str, Any], client: str) -> Future:
        """Check `params` now, render on the worker: a Future of (encoded bytes, Frame, RenderParams), or SUPERSEDED."""
        p, slot = parse_params(params, {k: v for k, v in self.slots.items() if v is not None})

        def job() -> tuple[bytes, Frame, RenderParams]:
            with self._latent_noise(slot, p):
                frame = render(slot, p)
            return encode(frame.pixels, p.format, p.quality), frame, p

        return self.worker.submit(client, job)

    def ws_file(self, params: dict[str, Any]) -> bytes:
        """The frame's ws (with style mixing) as a projected_w.npz (key `w`, [1, num_ws, w_dim])."""
        p, slot = parse_params(params, {k: v for k, v in self.slots.items() if v is not None})
        ws = self.worker.call(lambda: frame_ws(slot, p).cpu())
        buf = io.BytesIO()
        np.savez(buf, w=ws.numpy().astype(np.float32))
        return buf.getvalue()

    def _latent_noise(self, slot: NetworkSlot, p: RenderParams) -> contextlib.AbstractContextManager:
        """A projected latent renders with its optimised noise maps (in 'const' noise mode), as `generate --projected-w`."""
        noise = self.noise.get((slot.name, p.latent)) if p.latent is not None and p.noise_mode == "const" else None
        return noise_maps_set(slot.G, noise) if noise else contextlib.nullcontext()

    # ------------------------------------------------------------------------- latents

    def add_latents(self, network: str, data: bytes, filename: str = "projected_w.npz") -> str:
        """Store the ws of an uploaded projected_w.npz (LatentFileError when it does not fit the network)."""
        slot = self.slot(network)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.npz"
            path.write_bytes(data)
            try:
                ws = load_projected_w(path, slot.G)
                noise = load_projected_noise(path, slot.G) if len(ws) == 1 else {}
            except LatentFileError as e:
                raise LatentFileError(str(e).replace(str(path), filename)) from None
        return self._store_latent(slot, f"w{next(self._ids)}", ws, noise)

    def _store_latent(self, slot: NetworkSlot, name: str, ws: torch.Tensor, noise: dict[str, torch.Tensor]) -> str:
        with self._lock:
            slot.latents[name] = ws.cpu()
            if noise:
                self.noise[(slot.name, name)] = {k: v.to(self.device) for k, v in noise.items()}
        return name

    # ------------------------------------------------------------------------- projection

    def start_projection(self, network: str, image: bytes, num_steps: int = 200, space: str = "w",
                         distance: str = "mse", class_idx: int | None = None) -> ProjectionJob:
        """Project an uploaded image into W / W+ on a background thread (ValueError for bad input, before it starts)."""
        slot = self.slot(network)
        G = slot.G
        if not 1 <= num_steps <= MAX_PROJECTION_STEPS:
            raise RenderError(f"steps {num_steps}: must be 1..{MAX_PROJECTION_STEPS}")
        if space not in SPACES:
            raise RenderError(f"space: {space!r} is not one of {', '.join(SPACES)}")
        if distance not in DISTANCES:
            raise RenderError(f"distance: {distance!r} is not one of {', '.join(DISTANCES)}")
        try:
            with Image.open(io.BytesIO(image)) as im:
                im.load()
                target = image_to_target(im, G.img_channels, G.img_resolution)
        except UnidentifiedImageError:
            raise RenderError("image: not an image file that can be read (PNG, JPEG, WebP, ...)") from None
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise RenderError(f"image: cannot use this file ({e})".replace("\n", " ")) from None
        c = None
        if G.c_dim:
            k = 0 if class_idx is None else class_idx
            if not 0 <= k < G.c_dim:
                raise RenderError(f"class {k}: this network has {G.c_dim} classes (0..{G.c_dim - 1})")
            c = torch.zeros([1, G.c_dim], device=self.device)
            c[0, k] = 1
        vgg = None
        if distance == "lpips":
            from ..metrics.detectors import DetectorUnavailable
            from ..metrics.vgg import load_vgg16
            try:
                vgg = load_vgg16(None, lpips=True, device=self.device, what="stylegan serve (lpips projection)")
            except DetectorUnavailable as e:
                raise RenderError(f"distance lpips: the VGG16 + LPIPS weights cannot be loaded ({e}); use mse") from None
        G = self.worker.call(lambda: copy.deepcopy(G))  # between frames: no transform or noise of a frame in it
        job = ProjectionJob(id=f"p{next(self._ids)}", network=network, num_steps=num_steps)
        self.jobs[job.id] = job
        target_t = torch.from_numpy(target).permute(2, 0, 1).to(torch.float32) / 127.5 - 1

        def on_step(s: ProjectionStep) -> bool:
            job.step, job.distance = s.step, s.distance
            return job.cancel.is_set()

        def run() -> None:
            try:
                result = project(G, target_t, num_steps=num_steps, space=space, distance=distance, vgg=vgg, c=c,
                                 callback=on_step)
                job.distance = result.distance
                job.latent = self._store_latent(slot, f"proj{job.id[1:]}", result.ws, result.noise)
            except Exception as e:  # noqa: BLE001 -- reported in the page
                job.error = f"{type(e).__name__}: {e}"
            finally:
                job.done = True

        job.thread = threading.Thread(target=run, name=f"stylegan-{job.id}", daemon=True)
        job.thread.start()
        return job

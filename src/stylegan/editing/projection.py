"""Projection of an image into W or W+ (StyleGAN2 paper, section 5 and appendix D; NVIDIA's `projector.py`).

The optimisation is stylegan2-ada-pytorch's: Adam over w (initialised at the W midpoint) and every noise map
`noise_const` of the synthesis network, a learning rate ramped up over the first 5% of the steps and down
(cosine) over the last 25%, Gaussian noise added to w that ramps down quadratically to zero at 75% of the steps,
the multi-scale noise-autocorrelation penalty, and noise maps renormalised after every step. The distance is
LPIPS-VGG16 (the squared distance of `VGG16.lpips_embedding` vectors, as the official loss) or, where the VGG
weights are not available, pixel MSE. All randomness comes from one CPU `torch.Generator` seeded with `seed`,
whose state travels with the saved state, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..models.common import Generator
from .latents import LatentFileError, load_projected_w, save_projected_w

SPACES = ("w", "w+")
DISTANCES = ("lpips", "mse")
W_AVG_SAMPLES = 10000
W_AVG_SEED = 123
LPIPS_MAX_SIZE = 256
_8BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
_MODES_FOR = {1: _8BIT_MODES, 3: _8BIT_MODES, 4: ("RGBA", "LA", "PA")}  # image modes that convert to G's channels
_NOISE_PREFIX = "noise."
_ADAM_PREFIX = "adam."


# ----------------------------------------------------------------------------- schedules (appendix D)


def learning_rate(t: float, initial_learning_rate: float = 0.1, rampdown_length: float = 0.25,
                  rampup_length: float = 0.05) -> float:
    """Appendix D: lr(t) = lr_max * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))) * min(1, t / 0.05), t = step / num_steps."""
    ramp = min(1.0, (1.0 - t) / rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / rampup_length)
    return initial_learning_rate * ramp


def w_noise_scale(t: float, w_std: float, initial_noise_factor: float = 0.05, noise_ramp_length: float = 0.75) -> float:
    """Appendix D: std of the noise added to w, sigma_w * 0.05 * max(0, 1 - t / 0.75)^2."""
    return w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2


# ----------------------------------------------------------------------------- targets


def image_to_target(img: Image.Image, channels: int, resolution: int) -> np.ndarray:
    """A PIL image -> HWC uint8 with `channels` channels, centre-cropped to a square and Lanczos-resized to
    `resolution` (as the official projector prepares its target); ValueError for modes that do not convert."""
    if img.mode not in _MODES_FOR.get(channels, ()):
        raise ValueError(f"a {img.mode} image cannot be matched to the network's {channels} channel(s)")
    img = img.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])  # RGB -> L for 1-channel networks, alpha dropped for RGB
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((resolution, resolution), Image.LANCZOS)
    arr = np.array(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


# ----------------------------------------------------------------------------- noise maps


def noise_buffers(G: Generator) -> dict[str, torch.Tensor]:
    """The noise maps of `G.synthesis` (buffers named `noise_const`), by name; empty for StyleGAN3."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if "noise_const" in name}


def noise_regularization(noise_maps: Iterable[torch.Tensor]) -> torch.Tensor:
    """Appendix D: sum over maps and pyramid levels (down to 8x8) of the squared lag-1 autocorrelations in x and y."""
    reg = torch.zeros([])
    for n in noise_maps:
        assert n.ndim == 2 and n.shape[0] == n.shape[1], f"noise map must be [H, H], got {list(n.shape)}"
        x = n[None, None]
        reg = reg.to(x.device)
        while True:
            reg = reg + (x * torch.roll(x, shifts=1, dims=3)).mean() ** 2
            reg = reg + (x * torch.roll(x, shifts=1, dims=2)).mean() ** 2
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, kernel_size=2)
    return reg


@contextlib.contextmanager
def noise_maps_set(G: Generator, noise: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily set G.synthesis's noise buffers named in `noise` (a projection's optimised maps)."""
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


@torch.no_grad()
def normalize_noise_(noise_maps: Iterable[torch.Tensor]) -> None:
    """Appendix D: re-normalise every noise map to zero mean and unit variance, in place."""
    for n in noise_maps:
        n -= n.mean()
        n *= n.square().mean().rsqrt()


# ----------------------------------------------------------------------------- W statistics


@torch.no_grad()
def w_statistics(G: Generator, c: torch.Tensor | None = None, num_samples: int = W_AVG_SAMPLES,
                 seed: int = W_AVG_SEED, batch: int = 1000) -> tuple[torch.Tensor, float]:
    """W midpoint [1, 1, w_dim] and sigma_w = sqrt(sum |w - w_avg|^2 / N) over z ~ RandomState(123).randn(N, z_dim)."""
    device = next(G.parameters()).device
    z_all = np.random.RandomState(seed).randn(num_samples, G.z_dim)
    parts = []
    for start in range(0, num_samples, batch):
        z = torch.from_numpy(z_all[start:start + batch]).to(device=device, dtype=torch.float32)
        cc = None if c is None else c.to(device).expand(len(z), -1)
        parts.append(G.mapping(z, cc)[:, :1, :].float().cpu().numpy())
    w_samples = np.concatenate(parts)  # [N, 1, C]
    w_avg = np.mean(w_samples, axis=0, keepdims=True)  # [1, 1, C]
    w_std = float((np.sum((w_samples - w_avg) ** 2) / num_samples) ** 0.5)
    return torch.from_numpy(w_avg), w_std


# ----------------------------------------------------------------------------- distances


def _lpips_pixels(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in [-1, 1] -> [N, 3, <=256, <=256] in [0, 255], as the official projector feeds VGG16."""
    x = (img.to(torch.float32) + 1) * (255 / 2)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[2] > LPIPS_MAX_SIZE:
        x = F.interpolate(x, size=(LPIPS_MAX_SIZE, LPIPS_MAX_SIZE), mode="area")
    return x


class _Distance:
    """distance(synth [1, C, H, W] in [-1, 1]) to a fixed target: LPIPS (embedding squared distance) or pixel MSE."""

    def __init__(self, kind: str, target: torch.Tensor, vgg: torch.nn.Module | None) -> None:
        self.kind = kind
        self.vgg = vgg
        if kind == "lpips":
            assert vgg is not None
            self.target = vgg.lpips_embedding(_lpips_pixels(target[None]))
        else:
            self.target = target[None].to(torch.float32)

    def __call__(self, synth: torch.Tensor) -> torch.Tensor:
        if self.kind == "lpips":
            return (self.target - self.vgg.lpips_embedding(_lpips_pixels(synth))).square().sum()
        return (synth.to(torch.float32) - self.target).square().mean()


# ----------------------------------------------------------------------------- projection


@dataclass
class ProjectionStep:
    """What the per-step callback sees: `step` steps done of `num_steps`; `render()` draws the current projection."""

    step: int
    num_steps: int
    distance: float
    loss: float
    ws: torch.Tensor  # [1, num_ws, w_dim], without the added w noise
    render: Callable[[], torch.Tensor]  # -> [C, H, W] in about [-1, 1]


@dataclass
class ProjectionResult:
    """The state of a projection after `step` of `num_steps` steps; `save_projection` writes it, `project(resume=)` continues it."""

    ws: torch.Tensor  # [1, num_ws, w_dim]
    w_opt: torch.Tensor  # [1, 1, w_dim] (W) or [1, num_ws, w_dim] (W+): the optimised variable
    noise: dict[str, torch.Tensor]  # optimised noise maps, by buffer name in G.synthesis
    distance: float  # of the final ws and noise to the target
    metric: str  # 'lpips' or 'mse' (pixel MSE in [-1, 1] units)
    space: str
    step: int
    num_steps: int
    noise_reg: float
    w_avg: torch.Tensor  # [1, 1, w_dim]
    w_std: float
    distances: list[float] = field(default_factory=list)  # per step, with the w noise of that step
    adam_state: dict[str, np.ndarray] = field(default_factory=dict)
    rng_state: torch.Tensor | None = None  # the CPU generator after the last step
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        return self.step >= self.num_steps


def project(
    G: Generator,
    target: torch.Tensor,
    *,
    num_steps: int = 1000,
    space: str = "w",
    distance: str = "lpips",
    vgg: torch.nn.Module | None = None,
    c: torch.Tensor | None = None,
    seed: int = 303,
    noise_reg: float = 1e5,
    initial_learning_rate: float = 0.1,
    w_stats: tuple[torch.Tensor, float] | None = None,
    resume: ProjectionResult | None = None,
    callback: Callable[[ProjectionStep], bool | None] | None = None,
) -> ProjectionResult:
    """Project `target` [C, H, W] in [-1, 1] into W (`space='w'`) or W+ of `G` (StyleGAN2 paper, appendix D).

    `distance='lpips'` needs `vgg`, a `stylegan.metrics.vgg.VGG16` with LPIPS layers. `c`: the [1, c_dim] label of
    a conditional network. `resume`: an unfinished result continues its schedule exactly; a finished one starts a
    new schedule of `num_steps` from its w and noise. `callback` runs after every step; returning True stops early
    (the result then has `interrupted=True` and can be resumed).
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if distance == "lpips" and vgg is None:
        raise ValueError("distance='lpips' needs vgg (stylegan.metrics.vgg.load_vgg16(lpips=True))")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != expected:
        raise ValueError(f"target has shape {list(target.shape)}, the network makes {list(expected)}")
    if G.c_dim and (c is None or tuple(c.shape) != (1, G.c_dim)):
        raise ValueError(f"this network is conditional (c_dim={G.c_dim}): pass c of shape [1, {G.c_dim}]")

    G = _private_copy(G)
    device = next(G.parameters()).device
    target = target.to(device=device, dtype=torch.float32)
    noise_bufs = noise_buffers(G)
    gen = torch.Generator().manual_seed(seed)
    dist_fn = _Distance(distance, target, vgg)

    continuing = resume is not None and not resume.finished
    if resume is not None:
        check_resume(resume, G, space, distance)
        w_avg, w_std = resume.w_avg, resume.w_std
        if continuing:
            num_steps, noise_reg = resume.num_steps, resume.noise_reg
    else:
        w_avg, w_std = w_stats if w_stats is not None else w_statistics(G, c)
    w_avg = w_avg.to(device=device, dtype=torch.float32)

    if resume is not None:
        w_opt = resume.w_opt.to(device=device, dtype=torch.float32).clone()
    else:
        w_opt = w_avg.clone() if space == "w" else w_avg.repeat(1, G.num_ws, 1)
    w_opt.requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt] + list(noise_bufs.values()), betas=(0.9, 0.999), lr=initial_learning_rate)
    with torch.no_grad():
        for name, buf in noise_bufs.items():
            buf.copy_(resume.noise[name] if resume is not None else torch.randn(buf.shape, generator=gen))
            buf.requires_grad_(True)
    start, distances = 0, []
    if continuing:
        start, distances = resume.step, list(resume.distances)
        _load_adam(optimizer, resume.adam_state, device)
        gen.set_state(resume.rng_state)

    def current_ws() -> torch.Tensor:
        return w_opt.detach().repeat(1, G.num_ws, 1) if space == "w" else w_opt.detach().clone()

    def render() -> torch.Tensor:
        with torch.no_grad():
            return G.synthesis(current_ws(), noise_mode="const")[0].float()

    step, interrupted = start, False
    while step < num_steps:
        t = step / num_steps
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(t, initial_learning_rate)
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale(t, w_std)
        ws = w_opt + w_noise
        ws = ws.repeat(1, G.num_ws, 1) if space == "w" else ws
        dist = dist_fn(G.synthesis(ws, noise_mode="const"))
        loss = dist + noise_regularization(noise_bufs.values()) * noise_reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        normalize_noise_(noise_bufs.values())
        step += 1
        distances.append(float(dist.detach()))
        if callback is not None and callback(ProjectionStep(step, num_steps, distances[-1], float(loss.detach()), current_ws(), render)):
            interrupted = step < num_steps
            break

    with torch.no_grad():
        final = float(dist_fn(G.synthesis(current_ws(), noise_mode="const")))
    return ProjectionResult(
        ws=current_ws().cpu(), w_opt=w_opt.detach().cpu().clone(),
        noise={k: v.detach().cpu().clone() for k, v in noise_bufs.items()}, distance=final, metric=distance,
        space=space, step=step, num_steps=num_steps, noise_reg=noise_reg, w_avg=w_avg.cpu(), w_std=w_std,
        distances=distances, adam_state=_save_adam(optimizer), rng_state=gen.get_state(), interrupted=interrupted)


def _private_copy(G: Generator) -> torch.nn.Module:
    """A copy of G whose noise buffers can be optimised without touching the caller's network."""
    return copy.deepcopy(G).eval().requires_grad_(False)


def check_resume(state: ProjectionResult, G: Generator, space: str, distance: str) -> None:
    """ValueError when a saved projection cannot continue on `G` in `space` with `distance`."""
    if state.space != space:
        raise ValueError(f"the saved projection is in {state.space!r}, not {space!r}")
    if not state.finished and state.metric != distance:
        raise ValueError(f"the saved projection optimised {state.metric!r}, not {distance!r}; an unfinished run continues with its own distance")
    shape = (1, 1 if space == "w" else G.num_ws, G.w_dim)
    if tuple(state.w_opt.shape) != shape:
        raise ValueError(f"the saved w has shape {list(state.w_opt.shape)}, this network takes {list(shape)}")
    theirs = {k: tuple(v.shape) for k, v in state.noise.items()}
    ours = {k: tuple(v.shape) for k, v in noise_buffers(G).items()}
    if theirs != ours:
        raise ValueError(f"the saved noise maps ({len(theirs)}) do not match this network's ({len(ours)})")


def _save_adam(optimizer: torch.optim.Adam) -> dict[str, np.ndarray]:
    out = {}
    for i, s in optimizer.state_dict()["state"].items():
        for key in ("step", "exp_avg", "exp_avg_sq"):
            out[f"{i}.{key}"] = torch.as_tensor(s[key]).detach().float().cpu().numpy()
    return out


def _load_adam(optimizer: torch.optim.Adam, state: dict[str, np.ndarray], device: torch.device) -> None:
    sd = optimizer.state_dict()
    sd["state"] = {}
    for i in range(len(sd["param_groups"][0]["params"])):
        if f"{i}.step" in state:
            sd["state"][i] = {"step": torch.tensor(float(state[f"{i}.step"])),
                              "exp_avg": torch.from_numpy(state[f"{i}.exp_avg"]).to(device),
                              "exp_avg_sq": torch.from_numpy(state[f"{i}.exp_avg_sq"]).to(device)}
    optimizer.load_state_dict(sd)


# ----------------------------------------------------------------------------- files


def save_projection(path: str | os.PathLike, result: ProjectionResult) -> None:
    """Write `projected_w.npz`: key `w` [1, num_ws, w_dim] as the official projector, plus the state to resume."""
    extra: dict[str, np.ndarray] = {
        "w_opt": result.w_opt.numpy(), "w_avg": result.w_avg.numpy(), "w_std": np.float64(result.w_std),
        "step": np.int64(result.step), "num_steps": np.int64(result.num_steps), "space": np.str_(result.space),
        "metric": np.str_(result.metric), "distance": np.float64(result.distance),
        "noise_reg": np.float64(result.noise_reg), "distances": np.asarray(result.distances, np.float64),
        "rng_state": result.rng_state.numpy() if result.rng_state is not None else np.zeros([0], np.uint8),
    }
    extra.update({_NOISE_PREFIX + k: v.numpy() for k, v in result.noise.items()})
    extra.update({_ADAM_PREFIX + k: v for k, v in result.adam_state.items()})
    save_projected_w(path, result.ws, **extra)


def load_projection(path: str | os.PathLike) -> ProjectionResult:
    """Read a `projected_w.npz` written by `save_projection` (LatentFileError, one line, when it is not one)."""
    p = Path(path)
    ws = load_projected_w(p)
    try:
        with np.load(p, allow_pickle=False) as data:
            d = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise LatentFileError(f"{p}: not a NumPy .npz file ({e})") from None
    missing = [k for k in ("w_opt", "w_avg", "w_std", "step", "num_steps", "space", "metric", "noise_reg", "rng_state") if k not in d]
    if missing:
        raise LatentFileError(f"{p}: holds only w, not a resumable projection (no {', '.join(missing)})")
    return ProjectionResult(
        ws=ws, w_opt=torch.from_numpy(d["w_opt"]), noise=load_projected_noise(p), distance=float(d.get("distance", np.nan)),
        metric=str(d["metric"]), space=str(d["space"]), step=int(d["step"]), num_steps=int(d["num_steps"]),
        noise_reg=float(d["noise_reg"]), w_avg=torch.from_numpy(d["w_avg"]), w_std=float(d["w_std"]),
        distances=[float(x) for x in d.get("distances", [])],
        adam_state={k[len(_ADAM_PREFIX):]: v for k, v in d.items() if k.startswith(_ADAM_PREFIX)},
        rng_state=torch.from_numpy(d["rng_state"]) if d["rng_state"].size else None)


def load_projected_noise(path: str | os.PathLike, G: Generator | None = None) -> dict[str, torch.Tensor]:
    """The optimised noise maps stored in a `projected_w.npz` (empty when it has none), checked against `G` when given."""
    p = Path(path)
    with np.load(p, allow_pickle=False) as data:
        if isinstance(data, np.ndarray):
            return {}
        noise = {k[len(_NOISE_PREFIX):]: torch.from_numpy(data[k]) for k in data.files if k.startswith(_NOISE_PREFIX)}
    if G is not None and noise:
        ours = {k: tuple(v.shape) for k, v in noise_buffers(G).items()}
        if {k: tuple(v.shape) for k, v in noise.items()} != ours:
            raise LatentFileError(f"{p}: its {len(noise)} noise maps do not match the network's {len(ours)} noise_const buffers")
    return noise


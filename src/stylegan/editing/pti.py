"""Pivotal Tuning Inversion (Roich, Mokady, Bermano, Cohen-Or, "Pivotal Tuning for Latent-based Editing of Real
Images", 2022) as StyleGAN-XL's `run_inversion.py` runs it after its W projection (`pivotal_tuning`,
`space_regularizer_loss`), for every generator family.

A copy of the generator is fine-tuned so that the projected latent (the pivot: ws [1, num_ws, w_dim] and the
projection's optimised noise maps) reproduces the target. One Adam step (lr 3e-4, default betas, no schedule)
per iteration on

    loss = MSE_255(target, G(pivot)) + D(target, G(pivot)) + λ D(G_orig(w_r), G(w_r))          (PTI eqs. 1-4)

- MSE_255: mean squared difference on the [0, 255] scale, of images area-downsampled to 256x256 when larger
  (the XL code measures both its terms at <= 256²);
- D: the squared distance of LPIPS-VGG16 embeddings (`VGG16.lpips_embedding`, the projector's LPIPS), or, without
  the VGG16 weights, the projector's labelled pixel MSE in [-1, 1] units;
- the locality regulariser (PTI §3.2): one z ~ N(0, I) per step (with a class drawn uniformly for a conditional
  network), w = G_orig.mapping(z, c, ψ = 0.5) (class-wise truncation on StyleGAN-XL), moved to distance α = 30
  from the pivot along w - pivot: w_r = pivot + α (w - pivot) / |w - pivot|, λ = 10.

Details and quirks of the XL code kept here: the norm |w - pivot| is taken over the whole [num_ws, w_dim] tensor,
so each layer's w moves α / sqrt(num_ws); the regulariser renders with `noise_mode='none'` and `force_fp32=True`
(the pivot with the constant noise); the pixels of the regulariser's images reach VGG16 in [-1, 1] where it
expects [0, 255] (`reg_input='xl'`), which shrinks their differences 127.5-fold before the network
(`reg_input='rescaled'` gives it [0, 255]); every parameter is handed to Adam but only the synthesis network's get
gradients (the pivot's path never runs the mapping network, the regulariser maps with the untuned copy), so
optimising the synthesis parameters alone makes the same updates; the copy is tuned in training mode.

Differences: all randomness comes from one CPU `torch.Generator` seeded with `seed` (XL: NumPy's global generator
for z, torch's for the class), whose state travels with the saved state, so a resumed run ends with the same
weights as an uninterrupted one; the pivot keeps the projection's noise maps (StyleGAN-XL has none), which the
tuned network does not store: it keeps the original's noise buffers, and `projected_w.npz` carries the maps.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from ..io.checkpoint import read_aux_tensors, read_checkpoint, save_checkpoint
from ..models.common import Generator
from ..models.registry import build_network, network_spec
from .projection import DISTANCES, ImageDistance, lpips_pixels, noise_buffers
from .sampling import one_hot

PTI_FILE = "G_pti.safetensors"  # the tuned generator, beside projected_w.npz
PTI_STEPS = 350
PTI_LEARNING_RATE = 3e-4
LOCALITY_ALPHA = 30.0
LOCALITY_WEIGHT = 10.0
LOCALITY_PSI = 0.5
REG_INPUTS = ("xl", "rescaled")
_AUX_PREFIX = "pti."
_HISTORY = ("loss", "mse", "distance", "reg")


class PTIFileError(ValueError):
    """A tuned-generator file that is not a PTI state, or one that does not belong to this run (one line)."""


# ----------------------------------------------------------------------------- pieces of the loss


def locality_ws(w: torch.Tensor, pivot: torch.Tensor, alpha: float = LOCALITY_ALPHA) -> torch.Tensor:
    """PTI §3.2: w [1, num_ws, w_dim] moved to distance `alpha` from `pivot` along w - pivot, the norm taken over
    the whole tensor (as PTI's and StyleGAN-XL's `get_morphed_w_code`)."""
    direction = w - pivot
    return pivot + alpha * direction / direction.norm(p=2)


def _mse_255(target_px: torch.Tensor, synth_px: torch.Tensor) -> torch.Tensor:
    """torch.nn.MSELoss of two images already on the [0, 255] scale."""
    return (target_px - synth_px).square().mean()


def _pair_distance(kind: str, vgg: torch.nn.Module | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D between two batches of VGG16 inputs (pixels meant to be in [0, 255]): the squared distance of their LPIPS
    embeddings, or the mean squared difference in [-1, 1] units (255 / 2 to the unit)."""
    if kind == "lpips":
        assert vgg is not None
        embed = cast(Callable[[torch.Tensor], torch.Tensor], vgg.lpips_embedding)
        return (embed(a) - embed(b)).square().sum()
    return ((a - b) / (255 / 2)).square().mean()


def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes, in name order): ties a saved PTI state to the
    network, pivot and target it was made from."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------- tuning


@dataclass
class PTIStep:
    """What the per-step callback sees: `step` steps done of `num_steps`, the loss terms of that step (before its
    update), and `render()`, the pivot drawn by the network as tuned so far."""

    step: int
    num_steps: int
    loss: float
    mse: float
    distance: float
    reg: float
    render: Callable[[], torch.Tensor]  # -> [C, H, W] in about [-1, 1]


@dataclass
class PTIResult:
    """A pivotal tuning after `step` of `num_steps` steps; `save_pti` writes it, `pivotal_tuning(resume=)` continues it."""

    G: Generator  # the tuned copy (eval mode, no gradients, the original's noise buffers)
    step: int
    num_steps: int
    metric: str  # 'lpips' or 'mse' (pixel MSE in [-1, 1] units)
    distance_before: float  # of the untuned network's pivot image to the target (= the projection's final distance)
    distance: float  # of the tuned network's pivot image to the target
    learning_rate: float
    reg_weight: float
    reg_alpha: float
    reg_psi: float
    reg_input: str
    seed: int
    source: str  # fingerprint of the untuned network
    pivot: str  # fingerprint of the pivot (ws and noise maps)
    target: str  # fingerprint of the target
    history: dict[str, list[float]] = field(default_factory=dict)  # per step: loss, mse, distance, reg
    adam_state: dict[str, torch.Tensor] = field(default_factory=dict)
    rng_state: torch.Tensor | None = None
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        return self.step >= self.num_steps


def pivotal_tuning(
    G: Generator,
    target: torch.Tensor,
    ws: torch.Tensor,
    *,
    noise: dict[str, torch.Tensor] | None = None,
    num_steps: int = PTI_STEPS,
    distance: str = "lpips",
    vgg: torch.nn.Module | None = None,
    seed: int = 303,
    learning_rate: float = PTI_LEARNING_RATE,
    reg_weight: float = LOCALITY_WEIGHT,
    reg_alpha: float = LOCALITY_ALPHA,
    reg_psi: float = LOCALITY_PSI,
    reg_input: str = "xl",
    resume: PTIResult | None = None,
    callback: Callable[[PTIStep], bool | None] | None = None,
) -> PTIResult:
    """Tune a copy of `G` so that the pivot `ws` [1, num_ws, w_dim] (with the projection's `noise` maps) reproduces
    `target` [C, H, W] in [-1, 1]; `G` itself is left untouched and is the regulariser's reference.

    `distance='lpips'` needs `vgg` (`stylegan.metrics.vgg.load_vgg16(lpips=True)`). `reg_weight=0` turns the
    locality regulariser off. `resume`: an unfinished result of the same G, pivot and target (`check_resume`)
    continues with its own schedule and settings exactly. `callback` runs after every step; returning True stops
    early (the result then has `interrupted=True` and can be resumed).
    """
    noise = dict(noise or {})
    _check_arguments(G, target, ws, noise, num_steps, distance, vgg, learning_rate, reg_weight, reg_alpha, reg_input)
    ids = tuning_ids(G, target, ws, noise)
    if resume is not None:
        check_resume(resume, ids, distance)
        num_steps, learning_rate, seed = resume.num_steps, resume.learning_rate, resume.seed
        reg_weight, reg_alpha, reg_psi, reg_input = resume.reg_weight, resume.reg_alpha, resume.reg_psi, resume.reg_input

    device = next(G.parameters()).device
    G_orig = copy.deepcopy(G).eval().requires_grad_(False)
    G_pti = copy.deepcopy(G).requires_grad_(False)
    if resume is not None:
        G_pti.load_state_dict(resume.G.state_dict())
    G_pti.train()
    original_noise = {k: v.clone() for k, v in noise_buffers(G_pti).items()}
    with torch.no_grad():
        for name, buf in noise_buffers(G_pti).items():
            if name in noise:
                buf.copy_(noise[name])
    params = list(G_pti.synthesis.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    pivot = ws.to(device=device, dtype=torch.float32)
    target = target.to(device=device, dtype=torch.float32)
    dist_fn = ImageDistance(distance, target, vgg)
    target_px = lpips_pixels(target[None])

    def render() -> torch.Tensor:
        with torch.no_grad():
            return G_pti.synthesis(pivot, noise_mode="const")[0].float()

    start, history = 0, {k: list[float]() for k in _HISTORY}
    if resume is not None:
        assert resume.rng_state is not None
        start, history = resume.step, {k: list(resume.history.get(k, [])) for k in _HISTORY}
        _load_adam(optimizer, resume.adam_state, device)
        gen.set_state(resume.rng_state)
        distance_before = resume.distance_before
    else:
        with torch.no_grad():
            distance_before = float(dist_fn(G_pti.eval().synthesis(pivot, noise_mode="const")))
        G_pti.train()

    step, interrupted = start, False
    while step < num_steps:
        synth = G_pti.synthesis(pivot, noise_mode="const")
        mse = _mse_255(target_px, lpips_pixels(synth))
        dist = dist_fn(synth)
        reg = torch.zeros([], device=device)
        if reg_weight > 0:
            reg = reg_weight * _locality_term(G_pti, G_orig, pivot, gen, distance, vgg, reg_alpha, reg_psi, reg_input)
        loss = mse + dist + reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        for key, value in zip(_HISTORY, (loss, mse, dist, reg)):
            history[key].append(float(value.detach()))
        if callback is not None and callback(PTIStep(step, num_steps, history["loss"][-1], history["mse"][-1],
                                                     history["distance"][-1], history["reg"][-1], render)):
            interrupted = step < num_steps
            break

    G_pti.eval().requires_grad_(False)
    with torch.no_grad():
        final = float(dist_fn(G_pti.synthesis(pivot, noise_mode="const")))
        for name, buf in noise_buffers(G_pti).items():
            buf.copy_(original_noise[name])
    return PTIResult(
        G=G_pti, step=step, num_steps=num_steps, metric=distance, distance_before=distance_before, distance=final,
        learning_rate=learning_rate, reg_weight=reg_weight, reg_alpha=reg_alpha, reg_psi=reg_psi, reg_input=reg_input,
        seed=seed, history=history, adam_state=_save_adam(optimizer), rng_state=gen.get_state(), interrupted=interrupted,
        **ids)


def _locality_term(G_pti: Generator, G_orig: Generator, pivot: torch.Tensor, gen: torch.Generator, distance: str,
                   vgg: torch.nn.Module | None, alpha: float, psi: float, reg_input: str) -> torch.Tensor:
    """D(G_orig(w_r), G_pti(w_r)) for one random latent w_r at distance `alpha` from the pivot (PTI §3.2)."""
    device = pivot.device
    z = torch.randn([1, G_orig.z_dim], generator=gen).to(device)
    c = None
    if G_orig.c_dim > 0:
        c = one_hot(torch.randint(G_orig.c_dim, [1], generator=gen).numpy(), G_orig.c_dim, device)
    w_r = locality_ws(G_orig.mapping(z, c, truncation_psi=psi), pivot, alpha)
    new = G_pti.synthesis(w_r, noise_mode="none", force_fp32=True)
    with torch.no_grad():
        old = G_orig.synthesis(w_r, noise_mode="none", force_fp32=True)
    to_255 = reg_input == "rescaled"
    return _pair_distance(distance, vgg, lpips_pixels(old, to_255), lpips_pixels(new, to_255))


def tuning_ids(G: Generator, target: torch.Tensor, ws: torch.Tensor, noise: dict[str, torch.Tensor]) -> dict[str, str]:
    """What a tuning is tied to: fingerprints of the untuned network (`source`), the pivot and the target."""
    return {"source": fingerprint(G.state_dict()), "pivot": fingerprint({"ws": ws, **noise}),
            "target": fingerprint({"target": target})}


def _check_arguments(G: Generator, target: torch.Tensor, ws: torch.Tensor, noise: dict[str, torch.Tensor], num_steps: int,
                     distance: str, vgg: torch.nn.Module | None, learning_rate: float, reg_weight: float, reg_alpha: float,
                     reg_input: str) -> None:
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if distance == "lpips" and vgg is None:
        raise ValueError("distance='lpips' needs vgg (stylegan.metrics.vgg.load_vgg16(lpips=True))")
    if reg_input not in REG_INPUTS:
        raise ValueError(f"reg_input must be one of {REG_INPUTS}, got {reg_input!r}")
    if not learning_rate > 0 or not reg_weight >= 0 or not reg_alpha > 0:
        raise ValueError(f"need learning_rate > 0, reg_weight >= 0 and reg_alpha > 0, got {learning_rate}, {reg_weight}, {reg_alpha}")
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != expected:
        raise ValueError(f"target has shape {list(target.shape)}, the network makes {list(expected)}")
    if tuple(ws.shape) != (1, G.num_ws, G.w_dim):
        raise ValueError(f"the pivot has shape {list(ws.shape)}, the network takes [1, {G.num_ws}, {G.w_dim}]")
    ours = {k: tuple(v.shape) for k, v in noise_buffers(G).items()}
    if any(ours.get(k) != tuple(v.shape) for k, v in noise.items()):
        raise ValueError(f"the pivot's noise maps ({len(noise)}) do not match the network's ({len(ours)})")


def check_resume(state: PTIResult, ids: dict[str, str], distance: str) -> None:
    """PTIFileError unless `state` is an unfinished tuning with these `tuning_ids` and distance."""
    if state.finished:
        raise PTIFileError(f"the saved tuning is finished ({state.step} of {state.num_steps} steps): nothing to continue")
    if state.source != ids["source"]:
        raise PTIFileError("the saved tuning was made from another network (its untuned weights differ from these)")
    if state.pivot != ids["pivot"]:
        raise PTIFileError("the saved tuning was made around another pivot (ws or noise maps differ from the projection's)")
    if state.target != ids["target"]:
        raise PTIFileError("the saved tuning was made for another target image")
    if state.metric != distance:
        raise PTIFileError(f"the saved tuning optimised {state.metric!r}, not {distance!r}; an unfinished run continues "
                           "with its own distance")


def _save_adam(optimizer: torch.optim.Adam) -> dict[str, torch.Tensor]:
    return {f"{i}.{key}": torch.as_tensor(value).detach().cpu().clone()
            for i, s in optimizer.state_dict()["state"].items() for key, value in s.items()}


def _load_adam(optimizer: torch.optim.Adam, state: dict[str, torch.Tensor], device: torch.device) -> None:
    sd = optimizer.state_dict()
    sd["state"] = {}
    for key, value in state.items():
        idx, name = key.split(".", 1)
        sd["state"].setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict(sd)


# ----------------------------------------------------------------------------- files


def save_pti(path: str | os.PathLike, result: PTIResult) -> None:
    """Write the tuned generator as a native checkpoint (network `G_ema`, read by every command), with the tuning's
    settings, fingerprints and history in its metadata; an unfinished run also stores its Adam moments and random
    generator (`_aux.pti.*`) so that it can be resumed. Atomic."""
    meta = {k: getattr(result, k) for k in ("step", "num_steps", "metric", "distance_before", "distance", "learning_rate",
                                            "reg_weight", "reg_alpha", "reg_psi", "reg_input", "seed", "source", "pivot",
                                            "target", "history")}
    aux: dict[str, torch.Tensor] = {}
    if not result.finished:
        aux = {f"{_AUX_PREFIX}adam.{k}": v for k, v in result.adam_state.items()}
        assert result.rng_state is not None
        aux[f"{_AUX_PREFIX}rng_state"] = result.rng_state
    save_checkpoint(path, {"G_ema": (network_spec(result.G), result.G.state_dict())}, {"pti": meta}, aux)


def load_pti(path: str | os.PathLike) -> PTIResult:
    """Read a file written by `save_pti` (PTIFileError, one line with the path, when it is not one)."""
    try:
        nets, extra = read_checkpoint(path)
        aux = read_aux_tensors(path)
    except (OSError, ValueError) as e:
        raise PTIFileError(f"{path}: not a native checkpoint ({e})") from None
    meta: dict[str, Any] | None = extra.get("pti")
    if meta is None or "G_ema" not in nets:
        raise PTIFileError(f"{path}: holds no pivotal-tuning state (not written by stylegan project --pti-steps)")
    spec, state = nets["G_ema"]
    try:
        G = build_network(spec)
        G.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as e:
        raise PTIFileError(f"{path}: its tuned generator cannot be rebuilt ({str(e).splitlines()[0]})") from None
    adam = {k[len(_AUX_PREFIX) + 5:]: v for k, v in aux.items() if k.startswith(f"{_AUX_PREFIX}adam.")}
    rng = aux.get(f"{_AUX_PREFIX}rng_state")
    try:
        result = PTIResult(
            G=cast(Generator, G.eval().requires_grad_(False)), step=int(meta["step"]), num_steps=int(meta["num_steps"]),
            metric=str(meta["metric"]), distance_before=float(meta["distance_before"]), distance=float(meta["distance"]),
            learning_rate=float(meta["learning_rate"]), reg_weight=float(meta["reg_weight"]), reg_alpha=float(meta["reg_alpha"]),
            reg_psi=float(meta["reg_psi"]), reg_input=str(meta["reg_input"]), seed=int(meta["seed"]), source=str(meta["source"]),
            pivot=str(meta["pivot"]), target=str(meta["target"]),
            history={str(k): [float(x) for x in v] for k, v in dict(meta["history"]).items()}, adam_state=adam, rng_state=rng)
    except (KeyError, TypeError, ValueError) as e:
        raise PTIFileError(f"{path}: its pivotal-tuning metadata is damaged ({e!r})") from None
    if not result.finished and rng is None:
        raise PTIFileError(f"{path}: an unfinished tuning without its optimizer state cannot be resumed")
    return result

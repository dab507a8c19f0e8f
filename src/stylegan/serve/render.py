"""What the explorer draws: render parameters, their checks, and one frame of a loaded network.

A frame is G.synthesis(ws) for ws from a point of the latent plane (integer points are seeds, points in between
blend the four nearest seeds' ws bilinearly, as NVIDIA's visualizer does) or from a stored latent (an uploaded
`projected_w.npz`, a finished projection), with truncation, style mixing, noise, StyleGAN3's input transform and,
optionally, one layer's feature maps instead of the image. Everything here is generic over the generator
interface (`mapping`, `synthesis`, `z_dim`, `c_dim`, `w_dim`, `num_ws`, `img_resolution`, `img_channels`).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..editing.mixing import mix_styles
from ..io.export import input_transform
from ..io.images import hwc_uint8, to_uint8_for
from ..models.common import Generator
from ..models.stylegan3 import make_transform
from ..ops import NOISE_MODES

SEED_STRIDE = 1000  # the latent plane: point (i, j) is seed i + SEED_STRIDE * j
MAX_SEED = 2**32 - 1  # numpy's RandomState seeds
FORMATS = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


class RenderError(ValueError):
    """A bad render parameter: one line naming the parameter and the problem (shown in the page)."""


@dataclass
class NetworkSlot:
    """A loaded network and what the page needs to know about it."""

    name: str
    path: str
    G: Generator
    device: torch.device
    latents: dict[str, torch.Tensor] = field(default_factory=dict)  # id -> ws [N, num_ws, w_dim] (CPU)
    layers: list[str] = field(default_factory=list)  # synthesis modules with [N, C, H, W] outputs

    @property
    def has_transform(self) -> bool:
        return input_transform(self.G) is not None

    def info(self) -> dict[str, Any]:
        G = self.G
        return {"name": self.name, "path": self.path, "family": type(G).__module__.rsplit(".", 1)[-1],
                "img_resolution": G.img_resolution, "img_channels": G.img_channels, "z_dim": G.z_dim, "c_dim": G.c_dim,
                "w_dim": G.w_dim, "num_ws": G.num_ws, "has_transform": self.has_transform,
                "has_noise": any("noise_const" in n for n, _ in G.synthesis.named_buffers()),
                "layers": self.layers, "latents": {k: len(v) for k, v in self.latents.items()}}


def open_slot(name: str, path: str, G: Generator, device: torch.device) -> NetworkSlot:
    """A slot for `G`, with the synthesis layers whose feature maps can be shown (found by one forward pass)."""
    slot = NetworkSlot(name=name, path=path, G=G, device=device)
    found: list[str] = []
    hooks = []
    for layer_name, module in G.synthesis.named_modules():
        if layer_name and layer_name.count(".") <= 1:
            hooks.append(module.register_forward_hook(
                lambda m, i, out, n=layer_name: found.append(n) if isinstance(out, torch.Tensor) and out.ndim == 4 else None))
    try:
        with torch.no_grad():
            G.synthesis(torch.zeros([1, G.num_ws, G.w_dim], device=device), noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    slot.layers = list(dict.fromkeys(found))
    return slot


@dataclass
class RenderParams:
    """One frame. `x`, `y`: the point of the latent plane (integers = seeds); `latent`: id of a stored latent
    (then `latent_index` picks one of its ws and x, y, psi, cutoff, class do not apply)."""

    network: str
    x: float = 0.0
    y: float = 0.0
    latent: str | None = None
    latent_index: int = 0
    psi: float = 1.0
    cutoff: int | None = None
    class_idx: int | None = None
    noise_mode: str = "const"
    noise_seed: int = 0
    mix_seed: int | None = None
    mix_layers: tuple[int, int] = (0, 6)
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    layer: str | None = None
    channel: int = -1  # -1: the RMS over channels
    format: str = "jpeg"
    quality: int = 90


def _number(d: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = d.get(key, default)
    if value is None or value == "":
        return None if default is None else default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RenderError(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise RenderError(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RenderError(f"{key}: must be finite, got {value!r}")
    if kind is int:
        if number != int(number):
            raise RenderError(f"{key}: expected a whole number, got {value!r}")
        return int(number)
    return number


def _pair(d: dict[str, Any], key: str, kind: type, default: tuple) -> tuple:
    value = d.get(key, default)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RenderError(f"{key}: expected two numbers, got {value!r}")
    return tuple(_number({key: v}, key, kind, 0) for v in value)


def parse_params(d: dict[str, Any], slots: dict[str, NetworkSlot]) -> tuple[RenderParams, NetworkSlot]:
    """Check a request's parameters against the network they name; RenderError (one line) when one is bad."""
    if not isinstance(d, dict):
        raise RenderError("expected a JSON object of render parameters")
    name = d.get("network")
    if name not in slots:
        raise RenderError(f"network: {name!r} is not loaded (loaded: {', '.join(slots) or 'none'})")
    slot = slots[name]
    G = slot.G
    p = RenderParams(network=name)
    p.x, p.y = _number(d, "x", float, 0.0), _number(d, "y", float, 0.0)
    p.latent = d.get("latent") or None
    p.latent_index = _number(d, "latent_index", int, 0)
    p.psi = _number(d, "psi", float, 1.0)
    p.cutoff = _number(d, "cutoff", int, None)
    p.class_idx = _number(d, "class_idx", int, None)
    p.noise_mode = d.get("noise_mode", "const")
    p.noise_seed = _number(d, "noise_seed", int, 0)
    p.mix_seed = _number(d, "mix_seed", int, None)
    p.mix_layers = _pair(d, "mix_layers", int, (0, 6))
    p.translate = _pair(d, "translate", float, (0.0, 0.0))
    p.rotate = _number(d, "rotate", float, 0.0)
    p.layer = d.get("layer") or None
    p.channel = _number(d, "channel", int, -1)
    p.format = d.get("format", "jpeg")
    p.quality = _number(d, "quality", int, 90)

    if p.latent is not None:
        if p.latent not in slot.latents:
            raise RenderError(f"latent: {p.latent!r} is not loaded for {name} (loaded: {', '.join(slot.latents) or 'none'})")
        if not 0 <= p.latent_index < len(slot.latents[p.latent]):
            raise RenderError(f"latent_index {p.latent_index}: {p.latent} holds {len(slot.latents[p.latent])} ws")
    else:
        for s in corner_seeds(p.x, p.y):
            if not 0 <= s <= MAX_SEED:
                raise RenderError(f"seed {s} (x={p.x:g}, y={p.y:g}): seeds are 0..{MAX_SEED}")
    if not -10 <= p.psi <= 10:
        raise RenderError(f"psi {p.psi:g}: must be between -10 and 10")
    if p.cutoff is not None and not 0 <= p.cutoff <= G.num_ws:
        raise RenderError(f"cutoff {p.cutoff}: must be between 0 and num_ws={G.num_ws}")
    if G.c_dim:
        p.class_idx = 0 if p.class_idx is None else p.class_idx
        if not 0 <= p.class_idx < G.c_dim:
            raise RenderError(f"class {p.class_idx}: this network has {G.c_dim} classes (0..{G.c_dim - 1})")
    elif p.class_idx is not None:
        raise RenderError(f"class {p.class_idx}: this network is unconditional")
    if p.noise_mode not in NOISE_MODES:
        raise RenderError(f"noise_mode: {p.noise_mode!r} is not one of {', '.join(NOISE_MODES)}")
    for key, seed in (("noise_seed", p.noise_seed), ("mix_seed", p.mix_seed)):
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise RenderError(f"{key} {seed}: seeds are 0..{MAX_SEED}")
    lo, hi = p.mix_layers
    if p.mix_seed is not None and not 0 <= lo <= hi < G.num_ws:
        raise RenderError(f"mix_layers {lo}-{hi}: need 0 <= first <= last < num_ws={G.num_ws}")
    if (p.translate != (0.0, 0.0) or p.rotate != 0) and not slot.has_transform:
        raise RenderError(f"translate/rotate: {name} has no input transform (StyleGAN3-type networks only)")
    if p.layer is not None and p.layer not in slot.layers:
        raise RenderError(f"layer: {p.layer!r} is not a synthesis layer of {name}")
    if p.format not in FORMATS:
        raise RenderError(f"format: {p.format!r} is not one of {', '.join(FORMATS)}")
    if not 1 <= p.quality <= 100:
        raise RenderError(f"quality {p.quality}: must be 1..100")
    return p, slot


def corner_seeds(x: float, y: float) -> list[int]:
    """Seeds of the (up to four) latent-plane corners around (x, y) that carry weight."""
    return [seed for seed, _ in _corners(x, y)]


def _corners(x: float, y: float) -> list[tuple[int, float]]:
    """(seed, bilinear weight) of the corners around (x, y) with nonzero weight; one corner with weight 1 at integers."""
    i, j = math.floor(x), math.floor(y)
    fx, fy = x - i, y - j
    out = []
    for di, dj, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        if wt > 0:
            out.append(((i + di) + SEED_STRIDE * (j + dj), wt))
    return out


def _seed_ws(G: Generator, seed: int, c: torch.Tensor | None, p: RenderParams, device: torch.device) -> torch.Tensor:
    """mapping(z(seed), c, psi, cutoff) with z = RandomState(seed).randn(1, z_dim), as `stylegan generate` draws it."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32)).to(device)
    return G.mapping(z, c, truncation_psi=p.psi, truncation_cutoff=p.cutoff)


def frame_ws(slot: NetworkSlot, p: RenderParams) -> torch.Tensor:
    """The ws [1, num_ws, w_dim] of a frame (before style mixing)."""
    G, device = slot.G, slot.device
    if p.latent is not None:
        return slot.latents[p.latent][p.latent_index : p.latent_index + 1].to(device)
    c = None
    if G.c_dim:
        c = torch.zeros([1, G.c_dim], device=device)
        c[0, p.class_idx] = 1
    ws = None
    for seed, wt in _corners(p.x, p.y):  # blends of truncated ws = truncation of the blend (both linear, weights sum to 1)
        part = _seed_ws(G, seed, c, p, device) * wt  # exact for the one corner of an integer point (wt = 1)
        ws = part if ws is None else ws + part
    assert ws is not None
    if p.mix_seed is not None:
        lo, hi = p.mix_layers
        ws = mix_styles(ws, _seed_ws(G, p.mix_seed, c, p, device), range(lo, hi + 1))[:, 0]
    return ws


def feature_image(x: torch.Tensor, channel: int, resolution: int) -> np.ndarray:
    """One sample's feature maps [C, H, W] -> HW1 uint8: channel `channel` (or the RMS over channels when -1),
    scaled by its largest magnitude (zero is mid-grey for a channel, black for the RMS), nearest-upscaled to
    about `resolution`."""
    x = x.float()
    if channel >= x.shape[0]:
        raise RenderError(f"channel {channel}: the layer has {x.shape[0]} channels")
    if channel < 0:
        m = x.square().mean(0).sqrt()
        m = m / m.max().clamp_min(1e-8) * 255
    else:
        m = x[channel]
        m = (m / m.abs().max().clamp_min(1e-8) * 127.5 + 127.5)
    factor = max(1, resolution // m.shape[0])
    m = m.repeat_interleave(factor, 0).repeat_interleave(factor, 1)
    return m.round().clamp(0, 255).to(torch.uint8).cpu().numpy()[:, :, None]


@dataclass
class Frame:
    pixels: np.ndarray  # HWC uint8
    ws: torch.Tensor  # [1, num_ws, w_dim], CPU
    render_ms: float


def render(slot: NetworkSlot, p: RenderParams) -> Frame:
    """Render one frame (on the calling thread; `Renderer` keeps that to one worker)."""
    start = time.perf_counter()
    G = slot.G
    features: list[torch.Tensor] = []
    hook = None
    if p.layer is not None:
        hook = dict(G.synthesis.named_modules())[p.layer].register_forward_hook(lambda m, i, out: features.append(out))
    transform = input_transform(G)
    stored = None if transform is None else transform.clone()
    try:
        with torch.no_grad():
            if transform is not None:  # as `stylegan generate --translate --rotate`
                transform.copy_(torch.from_numpy(np.linalg.inv(make_transform(p.translate, p.rotate))))
            ws = frame_ws(slot, p)
            if p.noise_mode == "random":
                torch.manual_seed(p.noise_seed)
            img = G.synthesis(ws, noise_mode=p.noise_mode).float()
    finally:
        if hook is not None:
            hook.remove()
        if transform is not None and stored is not None:
            transform.copy_(stored)
    # Images as `stylegan generate` writes them (StyleGAN-XL networks: as StyleGAN-XL's gen_images.py).
    pixels = feature_image(features[0][0], p.channel, G.img_resolution) if features else hwc_uint8(img[0], to_uint8_for(G))
    if slot.device.type == "cuda":
        torch.cuda.synchronize(slot.device)
    return Frame(pixels=pixels, ws=ws.cpu(), render_ms=(time.perf_counter() - start) * 1000)


def encode(pixels: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """HWC uint8 (1, 3 or 4 channels) -> JPEG, WebP or PNG bytes (JPEG drops an alpha channel)."""
    c = pixels.shape[2]
    img = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, {1: "L", 3: "RGB", 4: "RGBA"}[c])
    if fmt == "jpeg" and c == 4:
        img = img.convert("RGB")
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format=fmt.upper(), quality=quality)
    return buf.getvalue()

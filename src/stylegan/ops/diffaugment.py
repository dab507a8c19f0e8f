"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", 2020) as Projected
GAN and StyleGAN-XL apply it inside their discriminator: policy 'color,translation,cutout', every image of the
batch with its own random parameters, differentiable with respect to the images.

Random numbers come from torch's global generator (or `generator`) in the official order — brightness,
saturation, contrast, translation x, translation y, cutout x, cutout y — one draw per image each, so with the same
seed the results equal the official `DiffAugment(x, policy)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.2


def _rand(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def _randint(low: int, high: int, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(low, high, size=[n, 1, 1], device=device, generator=generator)


def rand_color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness + U(-0.5, 0.5), saturation x U(0, 2) around the pixel's channel mean, contrast x U(0.5, 1.5)
    around the image mean."""
    x = x + (_rand(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean


def rand_translation(x: torch.Tensor, ratio: float = TRANSLATION_RATIO, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift by whole pixels, uniform in [-round(ratio H), round(ratio H)] (and W); vacated pixels become 0."""
    n, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-shift_h, shift_h + 1, n, x.device, generator)
    dx = _randint(-shift_w, shift_w + 1, n, x.device, generator)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + dy + 1, 0, h + 1)
    gx = torch.clamp(gx + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gy, gx].permute(0, 3, 1, 2)


def rand_cutout(x: torch.Tensor, ratio: float = CUTOUT_RATIO, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a round(ratio H) x round(ratio W) square at a uniform random centre (clipped at the borders)."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = _randint(0, h + (1 - size_h % 2), n, x.device, generator)
    ox = _randint(0, w + (1 - size_w % 2), n, x.device, generator)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(size_h, device=x.device),
                                torch.arange(size_w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + oy - size_h // 2, min=0, max=h - 1)
    gx = torch.clamp(gx + ox - size_w // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the comma-separated `policy` to NCHW images `x` (any value range; XL passes [-1, 1])."""
    if not policy:
        return x
    for name in policy.split(","):
        if name == "color":
            x = rand_color(x, generator)
        elif name == "translation":
            x = rand_translation(x, generator=generator)
        elif name == "cutout":
            x = rand_cutout(x, generator=generator)
        else:
            raise ValueError(f"unknown DiffAugment policy {name!r}; known: {', '.join(POLICIES)}")
    return x.contiguous()

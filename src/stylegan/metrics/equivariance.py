"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R ("Alias-Free Generative Adversarial Networks", appendix E).

Each is a PSNR in dB between the generator's output for a transformed input grid and the transformed
output image, inside the region both define: PSNR = 20 log10(2) - 10 log10(MSE) (images span [-1, 1]).
Registered as the metrics `eqt50k_int`, `eqt50k_frac` and `eqr50k` (`num_gen` sets the sample count and
renames them: `eqt1k_int`). Samples come in groups of EQ_GROUP sharing one random transform, as in NVIDIA's
metric (its batch of 4); group g draws its latents, labels and transforms from a generator seeded by
`(seed, g)`, so the result depends neither on the batch size nor on the number of processes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models.common import Generator
from ..ops import filter2d, upsample2d
from .fid import index_seed
from .registry import MetricOptions, counted_name, register_metric

EQ_GROUP = 4  # samples sharing one random transform (NVIDIA's batch size for these metrics)


def sinc(x: torch.Tensor) -> torch.Tensor:
    """sin(πx) / (πx), 1 at 0."""
    y = (x * np.pi).abs()
    z = torch.sin(y) / y.clamp(1e-30, float("inf"))
    return torch.where(y < 1e-30, torch.ones_like(x), z)


def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    x = x.abs() / a
    return torch.where(x < 1, sinc(x), torch.zeros_like(x))


def rotation_matrix(angle: torch.Tensor | float) -> torch.Tensor:
    """[3,3] float32 rotation by `angle` radians in image coordinates."""
    angle = torch.as_tensor(angle).to(torch.float32)
    mat = torch.eye(3, device=angle.device)
    mat[0, 0] = angle.cos()
    mat[0, 1] = angle.sin()
    mat[1, 0] = -angle.sin()
    mat[1, 1] = angle.cos()
    return mat


def apply_integer_translation(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift by (tx, ty) image sizes rounded to whole pixels (operator T_x, appendix E.1); returns image and valid mask."""
    _, _, h, w = x.shape
    ix = int(torch.as_tensor(tx * w).to(torch.float32).round())
    iy = int(torch.as_tensor(ty * h).to(torch.float32).round())
    z = torch.zeros_like(x)
    m = torch.zeros_like(x)
    if abs(ix) < w and abs(iy) < h:
        y = x[:, :, max(-iy, 0) : h + min(-iy, 0), max(-ix, 0) : w + min(-ix, 0)]
        z[:, :, max(iy, 0) : h + min(iy, 0), max(ix, 0) : w + min(ix, 0)] = y
        m[:, :, max(iy, 0) : h + min(iy, 0), max(ix, 0) : w + min(ix, 0)] = 1
    return z, m


def apply_fractional_translation(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel shift with a separable Lanczos-a kernel (operator T_x, appendix E.2); returns image and valid mask."""
    _, _, h, w = x.shape
    tx = torch.as_tensor(tx * w).to(dtype=torch.float32, device=x.device)
    ty = torch.as_tensor(ty * h).to(dtype=torch.float32, device=x.device)
    ix, iy = int(tx.floor()), int(ty.floor())
    fx, fy = tx - ix, ty - iy
    b = a - 1
    z = torch.zeros_like(x)
    zx0, zy0 = max(ix - b, 0), max(iy - b, 0)
    zx1, zy1 = min(ix + a, 0) + w, min(iy + a, 0) + h
    if zx0 < zx1 and zy0 < zy1:
        taps = torch.arange(a * 2, device=x.device) - b
        filter_x = (sinc(taps - fx) * sinc((taps - fx) / a)).unsqueeze(0)
        filter_y = (sinc(taps - fy) * sinc((taps - fy) / a)).unsqueeze(1)
        y = filter2d(x, filter_x / filter_x.sum(), padding=[b, a, 0, 0])
        y = filter2d(y, filter_y / filter_y.sum(), padding=[0, 0, b, a])
        y = y[:, :, max(b - iy, 0) : h + b + a + min(-iy - a, 0), max(b - ix, 0) : w + b + a + min(-ix - a, 0)]
        z[:, :, zy0:zy1, zx0:zx1] = y
    m = torch.zeros_like(x)
    mx0, my0 = max(ix + a, 0), max(iy + a, 0)
    mx1, my1 = min(ix - b, 0) + w, min(iy - b, 0) + h
    if mx0 < mx1 and my0 < my1:
        m[:, :, my0:my1, mx0:mx1] = 1
    return z, m


def construct_affine_bandlimit_filter(
    mat: torch.Tensor, a: int = 3, amax: int = 16, aflt: int = 64, up: int = 4, cutoff_in: float = 1, cutoff_out: float = 1
) -> torch.Tensor:
    """Oriented low-pass filter that band-limits both the input and the output grid of the 2-D affine `mat`:
    the convolution of two oriented sincs, windowed by the convolution of two oriented Lanczos windows."""
    if not a <= amax < aflt:
        raise ValueError(f"need a <= amax < aflt, got {a}, {amax}, {aflt}")
    mat = torch.as_tensor(mat).to(torch.float32)
    taps = ((torch.arange(aflt * up * 2 - 1, device=mat.device) + 1) / up - aflt).roll(1 - aflt * up)
    yi, xi = torch.meshgrid(taps, taps, indexing="ij")
    xo, yo = (torch.stack([xi, yi], dim=2) @ mat[:2, :2].t()).unbind(2)
    fi = sinc(xi * cutoff_in) * sinc(yi * cutoff_in)
    fo = sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    f = torch.fft.ifftn(torch.fft.fftn(fi) * torch.fft.fftn(fo)).real
    wi = lanczos_window(xi, a) * lanczos_window(yi, a)
    wo = lanczos_window(xo, a) * lanczos_window(yo, a)
    w = torch.fft.ifftn(torch.fft.fftn(wi) * torch.fft.fftn(wo)).real
    f = f * w
    c = (aflt - amax) * up
    f = f.roll([aflt * up - 1] * 2, dims=[0, 1])[c:-c, c:-c]
    f = F.pad(f, [0, 1, 0, 1]).reshape(amax * 2, up, amax * 2, up)
    f = f / f.sum([0, 2], keepdim=True) / (up**2)  # each of the up² polyphase components has unit DC gain
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def apply_affine_transformation(x: torch.Tensor, mat: torch.Tensor, up: int = 4, **filter_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample `x` under the affine `mat`: band-limited upsampling by `up`, then bilinear sampling."""
    _, _, h, w = x.shape
    mat = torch.as_tensor(mat).to(dtype=torch.float32, device=x.device)
    f = construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)
    p = f.shape[0] // 2
    theta = mat.inverse()
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / up / w
    theta[1, 2] += 1 / up / h
    theta[0, :] *= w / (w + p / up * 2)
    theta[1, :] *= h / (h + p / up * 2)
    theta = theta[:2, :3].unsqueeze(0).repeat([x.shape[0], 1, 1])
    g = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = upsample2d(x, f, up=up, padding=p)
    z = F.grid_sample(y, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = torch.zeros_like(y)
    c = p * 2 + 1
    m[:, :, c:-c, c:-c] = 1
    m = F.grid_sample(m, g, mode="nearest", padding_mode="zeros", align_corners=False)
    return z, m


def apply_fractional_rotation(x: torch.Tensor, angle: torch.Tensor, a: int = 3, **filter_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate by `angle` radians (operator R_α, appendix E.3)."""
    mat = rotation_matrix(torch.as_tensor(angle).to(dtype=torch.float32, device=x.device))
    return apply_affine_transformation(x, mat, a=a, amax=a * 2, **filter_kwargs)


def apply_fractional_pseudo_rotation(x: torch.Tensor, angle: torch.Tensor, a: int = 3, **filter_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Give `x` the frequency content it would have after rotation by `angle`, without rotating (R*_α, appendix E.3)."""
    mat = rotation_matrix(-torch.as_tensor(angle).to(dtype=torch.float32, device=x.device))
    f = construct_affine_bandlimit_filter(mat, a=a, amax=a * 2, up=1, **filter_kwargs)
    y = filter2d(x, f)
    m = torch.zeros_like(y)
    c = f.shape[0] // 2
    m[:, :, c:-c, c:-c] = 1
    return y, m


@torch.no_grad()
def compute_equivariance_metrics(
    G: Generator,
    num_samples: int = 50000,
    translate_max: float = 0.125,
    rotate_max: float = 1,
    eqt_int: bool = True,
    eqt_frac: bool = True,
    eqr: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
    rank: int = 0,
    num_gpus: int = 1,
) -> dict[str, float]:
    """EQ-T (`eqt_int`), EQ-T_frac (`eqt_frac`) and EQ-R (`eqr`) in dB over `num_samples` latents, as the
    official `metrics/equivariance.py` (50k samples in the paper; fewer give a quick estimate).

    Translations are drawn uniformly within ±`translate_max` image sizes, rotations within
    ±`rotate_max`·180°, one draw per group of EQ_GROUP samples. Conditional generators get uniformly random
    one-hot labels. With `num_gpus` > 1 (inside an initialised process group) each rank evaluates its share of
    the groups and the sums are added up, so every rank returns the single-process numbers.

    StyleGAN3 generators translate their Fourier-feature input through its transform. StyleGAN2 has no
    such input; for it EQ-T and EQ-T_frac translate its 4x4 constant input by the same fraction of the
    image (Lanczos-3, zero outside), the closest analogue (EQ-R is refused).
    """
    if not (eqt_int or eqt_frac or eqr):
        raise ValueError("select at least one of eqt_int, eqt_frac, eqr")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    device = torch.device(device) if device is not None else next(G.parameters()).device
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    M = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    const = getattr(getattr(getattr(G, "synthesis", None), "b4", None), "const", None)
    if M is None and const is None:
        raise ValueError("equivariance metrics need a StyleGAN3 generator (input transform) or a StyleGAN2 one (constant input)")
    if M is None and eqr:
        raise ValueError("EQ-R needs a StyleGAN3 generator; StyleGAN2 has EQ-T and EQ-T_frac (its constant input translated)")
    identity = torch.eye(3, device=device)
    const0 = None if const is None else const.detach().clone()

    def translate_input(t: torch.Tensor) -> None:
        """Translate the input signal by t image sizes: StyleGAN3's transform, or StyleGAN2's 4x4 constant
        shifted with the same Lanczos-3 operator (zero outside), so the output should move by t."""
        if M is not None:
            M.copy_(identity)
            M[:2, 2] = -t
        else:
            const.copy_(apply_fractional_translation(const0[None], t[0], t[1])[0][0])

    zero = torch.zeros(2, device=device)
    names = [n for n, on in (("eqt_int", eqt_int), ("eqt_frac", eqt_frac), ("eqr", eqr)) if on]
    sq_err = dict.fromkeys(names, 0.0)
    count = dict.fromkeys(names, 0.0)

    def accumulate(name: str, err: torch.Tensor, mask: torch.Tensor) -> None:
        sq_err[name] += float(err.sum())
        count[name] += float(mask.sum())

    for group in range(rank, -(-num_samples // EQ_GROUP), num_gpus):  # this rank's groups
        gen = torch.Generator().manual_seed(index_seed(seed, group))
        n = min(EQ_GROUP, num_samples - group * EQ_GROUP)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        c = None
        if G.c_dim > 0:
            c = F.one_hot(torch.randint(G.c_dim, [n], generator=gen), G.c_dim).to(device=device, dtype=torch.float32)
        ws = G.mapping(z, c)
        translate_input(zero)
        orig = G.synthesis(ws, noise_mode="const")

        if eqt_int:
            t = (torch.rand(2, generator=gen) * 2 - 1) * translate_max
            t = ((t * G.img_resolution).round() / G.img_resolution).to(device)
            translate_input(t)
            img = G.synthesis(ws, noise_mode="const")
            ref, mask = apply_integer_translation(orig, t[0], t[1])
            accumulate("eqt_int", (ref - img).square() * mask, mask)
        if eqt_frac:
            t = ((torch.rand(2, generator=gen) * 2 - 1) * translate_max).to(device)
            translate_input(t)
            img = G.synthesis(ws, noise_mode="const")
            ref, mask = apply_fractional_translation(orig, t[0], t[1])
            accumulate("eqt_frac", (ref - img).square() * mask, mask)
        if eqr:
            angle = ((torch.rand([], generator=gen) * 2 - 1) * (rotate_max * np.pi)).to(device)
            M.copy_(rotation_matrix(-angle))
            img = G.synthesis(ws, noise_mode="const")
            ref, ref_mask = apply_fractional_rotation(orig, angle)
            pseudo, pseudo_mask = apply_fractional_pseudo_rotation(img, angle)
            mask = ref_mask * pseudo_mask
            accumulate("eqr", (ref - pseudo).square() * mask, mask)

    if num_gpus > 1:
        sums = torch.tensor([sq_err[n] for n in names] + [count[n] for n in names], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(sums, op=torch.distributed.ReduceOp.SUM)
        sq_err, count = dict(zip(names, sums[:len(names)].tolist())), dict(zip(names, sums[len(names):].tolist()))
    # PSNR; an exactly equivariant result (no error at all, e.g. every drawn integer shift rounded to 0) is +inf
    return {name: 20 * math.log10(2) - 10 * math.log10(sq_err[name] / count[name]) if sq_err[name] > 0 else math.inf
            for name in names}


def _registered(opts: MetricOptions, name: str, flag: str) -> dict[str, float]:
    if opts.G is None:
        raise ValueError(f"{name} needs a generator")
    value = compute_equivariance_metrics(
        opts.G, num_samples=50000 if opts.num_gen is None else opts.num_gen, seed=opts.seed, device=opts.device,
        rank=opts.rank, num_gpus=opts.num_gpus, **{k: k == flag for k in ("eqt_int", "eqt_frac", "eqr")})[flag]
    return {counted_name(name, opts.num_gen): value}


@register_metric(counted=True, needs_generator=True)
def eqt50k_int(opts: MetricOptions) -> dict[str, float]:
    """EQ-T: integer translations, 50,000 samples."""
    return _registered(opts, "eqt50k_int", "eqt_int")


@register_metric(counted=True, needs_generator=True)
def eqt50k_frac(opts: MetricOptions) -> dict[str, float]:
    """EQ-T_frac: fractional translations, 50,000 samples."""
    return _registered(opts, "eqt50k_frac", "eqt_frac")


@register_metric(counted=True, needs_generator=True)
def eqr50k(opts: MetricOptions) -> dict[str, float]:
    """EQ-R: rotations, 50,000 samples."""
    return _registered(opts, "eqr50k", "eqr")

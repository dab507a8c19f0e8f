"""Adaptive discriminator augmentation (ADA) pipeline.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (appendix B), with the
semantics, constants and random-number order of NVlabs' stylegan2-ada-pytorch / stylegan3
`training/augment.py`. Every transform is applied to each image independently with probability
`multiplier * p`; `p` is the buffer that the ADA heuristic adjusts during training.

The pipeline is differentiable and supports double backward (R1 through augmented reals): the only
non-trivial op, bilinear `grid_sample`, goes through a wrapper whose backward is itself differentiable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.ops.fastpath import fast_paths_enabled
from stylegan.ops.upfirdn2d import downsample2d, setup_filter, upsample2d

__all__ = ["AUGMENT_PRESETS", "AugmentPipe", "ada_update", "augment_pipe"]

_BLIT = dict(xflip=1.0, rotate90=1.0, xint=1.0)
_GEOM = dict(scale=1.0, rotate=1.0, aniso=1.0, xfrac=1.0)
_COLOR = dict(brightness=1.0, contrast=1.0, lumaflip=1.0, hue=1.0, saturation=1.0)

# The `--augpipe` choices of the official train.py.
AUGMENT_PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": dict(imgfilter=1.0),
    "noise": dict(noise=1.0),
    "cutout": dict(cutout=1.0),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0, "noise": 1.0},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0, "noise": 1.0, "cutout": 1.0},
}

# Low-pass decomposition filters of Daubechies' symlets (PyWavelets' 'sym2' and 'sym6').
_SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
_SYM6 = [
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
]


def _filter_bank(lowpass: Sequence[float], num_bands: int = 4) -> np.ndarray:
    """Rows: 1-D filters isolating octave bands (lowest first) that sum to a unit impulse.

    Built like an undecimated wavelet tree: each level dilates the previous bands by 2, smooths them with
    the low-pass autocorrelation H(z)H(1/z)/2 and adds the high-pass autocorrelation H(-z)H(-1/z)/2 as the
    new band.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(num_bands, 1)
    for band in range(1, num_bands):
        dilated = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank


# ----------------------------------------------------------------------------- matrices


def _matrix(rows: Sequence[Sequence[float | torch.Tensor]], device: torch.device) -> torch.Tensor:
    """[R, C] matrix from numbers, or [N, R, C] when some entries are [N] tensors (numbers broadcast)."""
    ref = next((e for row in rows for e in row if isinstance(e, torch.Tensor)), None)
    if ref is None:
        return torch.tensor(rows, dtype=torch.float32, device=device)
    cells = [torch.as_tensor(e, dtype=torch.float32, device=device).expand(ref.shape) for row in rows for e in row]
    return torch.stack(cells, dim=-1).reshape(*ref.shape, len(rows), len(rows[0]))


def _translate2d(tx: float | torch.Tensor, ty: float | torch.Tensor, device: torch.device) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], device)


def _scale2d(sx: float | torch.Tensor, sy: float | torch.Tensor, device: torch.device) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], device)


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta.device)


def _rotate3d_luma(theta: torch.Tensor) -> torch.Tensor:
    """Homogeneous 4x4 rotation by `theta` about the luma axis (1, 1, 1) / sqrt(3) (Rodrigues' formula)."""
    c, s = torch.cos(theta), torch.sin(theta)
    a = (1 - c) / 3  # v_i v_j (1 - cos) with v_i = 1 / sqrt(3)
    b = s / math.sqrt(3)  # v_k sin
    return _matrix(
        [[a + c, a - b, a + b, 0], [a + b, a + c, a - b, 0], [a - b, a + b, a + c, 0], [0, 0, 0, 1]], theta.device
    )


# ----------------------------------------------------------------------------- grid_sample, twice differentiable


class _GridSample(torch.autograd.Function):
    """Bilinear, zero-padded `grid_sample` (align_corners=False); gradient w.r.t. the image only."""

    @staticmethod
    def forward(ctx, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(images, grid)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        images, grid = ctx.saved_tensors
        return _GridSampleImageGrad.apply(grad_output, images, grid), None


class _GridSampleImageGrad(torch.autograd.Function):
    """The image gradient of `_GridSample`: the sampling operator's transpose applied to `grad_output`.

    It is linear in `grad_output` and independent of the image values, so its own gradient is
    `_GridSample` of the incoming gradient — which makes any order of differentiation available.
    """

    @staticmethod
    def forward(ctx, grad_output: torch.Tensor, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grid)
        # interpolation 0 = bilinear, padding 0 = zeros, align_corners False; output_mask: image gradient only
        grad_images, _ = torch.ops.aten.grid_sampler_2d_backward(grad_output, images, grid, 0, 0, False, [True, False])
        return grad_images

    @staticmethod
    def backward(ctx, grad2: torch.Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def _grid_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """`_GridSample` for a constant grid (augmentation never needs the grid's gradient)."""
    if grid.requires_grad:
        raise ValueError("_grid_sample does not differentiate with respect to the sampling grid")
    return _GridSample.apply(images, grid)


# ----------------------------------------------------------------------------- pipeline


def _gate(value: torch.Tensor, prob: torch.Tensor | float, identity: float) -> torch.Tensor:
    """Keep each sample's `value` with probability `prob`, else the transform's identity value."""
    draw = torch.rand([value.shape[0]] + [1] * (value.ndim - 1), device=value.device)
    return torch.where(draw < prob, value, torch.full_like(value, identity))


class AugmentPipe(torch.nn.Module):
    """The ADA pipeline: pixel blitting, general geometry, colour, image-space filtering, corruptions.

    Multipliers (`xflip`, `rotate90`, ...) scale the overall probability `p`; the `*_std` / `*_max` /
    `*_size` arguments set each transform's strength exactly as in the official code. Images are float
    [N, C, H, W] with C = 1 (grayscale), 3 (RGB) or 4 (RGBA: colour transforms touch RGB only), values
    roughly in [-1, 1]. Image-space filtering reflect-pads by 21 pixels, so it needs H, W >= 22.
    """

    def __init__(
        self,
        xflip: float = 0, rotate90: float = 0, xint: float = 0, xint_max: float = 0.125,
        scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0,
        scale_std: float = 0.2, rotate_max: float = 1, aniso_std: float = 0.2, xfrac_std: float = 0.125,
        brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0, saturation: float = 0,
        brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1, saturation_std: float = 1,
        imgfilter: float = 0, imgfilter_bands: Sequence[float] = (1, 1, 1, 1), imgfilter_std: float = 1,
        noise: float = 0, cutout: float = 0, noise_std: float = 0.1, cutout_size: float = 0.5,
    ) -> None:
        super().__init__()
        self.register_buffer("p", torch.zeros([]))  # overall augmentation probability, set by the ADA heuristic

        # Pixel blitting (appendix B): multipliers and translation range (fraction of the image size).
        self.xflip, self.rotate90, self.xint = float(xflip), float(rotate90), float(xint)
        self.xint_max = float(xint_max)
        # General geometric transforms; *_std are log2 standard deviations, rotate_max 1 = full circle.
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max = float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        # Colour transforms; contrast_std and saturation_std are log2, hue_max 1 = full circle.
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        # Image-space filtering: per-band probability multipliers and log2 gain deviation.
        self.imgfilter, self.imgfilter_std = float(imgfilter), float(imgfilter_std)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        # Image-space corruptions: additive noise and cutout.
        self.noise, self.cutout = float(noise), float(cutout)
        self.noise_std, self.cutout_size = float(noise_std), float(cutout_size)

        # Buffer names follow the official module, so its state_dict loads as is.
        self.register_buffer("Hz_geom", setup_filter(_SYM6))  # orthogonal low-pass for 2x resampling
        self.register_buffer("Hz_geom_2d", torch.outer(self.Hz_geom, self.Hz_geom), persistent=False)
        self.register_buffer("Hz_fbank", torch.as_tensor(_filter_bank(_SYM2), dtype=torch.float32))
        if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
            raise ValueError(f"imgfilter_bands needs {self.Hz_fbank.shape[0]} entries, got {len(self.imgfilter_bands)}")

    def forward(self, images: torch.Tensor, debug_percentile: torch.Tensor | None = None) -> torch.Tensor:
        """Augment a batch; random numbers come from torch's global generator on the images' device.

        With p == 0 (and no `debug_percentile`) the input tensor itself is returned. With p > 0, images
        that draw no transform are still resampled by the geometric path and multiplied by identity
        colour / filter matrices, so they come back equal up to float round-off (~1e-5), as officially.
        `debug_percentile` in [0, 1] replaces every random choice by that quantile and applies all enabled
        transforms regardless of `p` (additive noise still draws fresh noise).
        """
        if images.ndim != 4:
            raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
        if debug_percentile is None and float(self.p) == 0:
            return images
        dp = None
        if debug_percentile is not None:
            dp = torch.as_tensor(debug_percentile, dtype=torch.float32, device=images.device)
        images = self._geometric(images, dp)
        images = self._color(images, dp)
        if self.imgfilter > 0:
            images = self._filter(images, dp)
        return self._corrupt(images, dp)

    def _geometric(self, images: torch.Tensor, dp: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        p = self.p
        inv = []  # inverse transforms (output pixel -> input pixel, centred coordinates), composed left to right

        if self.xflip > 0:
            i = _gate(torch.floor(torch.rand([n], device=dev) * 2), self.xflip * p, 0)
            if dp is not None:
                i = torch.floor(dp * 2).expand_as(i)
            inv.append(_scale2d(1 - 2 * i, 1, dev))
        if self.rotate90 > 0:
            i = _gate(torch.floor(torch.rand([n], device=dev) * 4), self.rotate90 * p, 0)
            if dp is not None:
                i = torch.floor(dp * 4).expand_as(i)
            inv.append(_rotate2d(i * (math.pi / 2)))
        if self.xint > 0:
            t = _gate((torch.rand([n, 2], device=dev) * 2 - 1) * self.xint_max, self.xint * p, 0)
            if dp is not None:
                t = ((dp * 2 - 1) * self.xint_max).expand_as(t)
            inv.append(_translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), dev))

        if self.scale > 0:
            s = _gate(torch.exp2(torch.randn([n], device=dev) * self.scale_std), self.scale * p, 1)
            if dp is not None:
                s = torch.exp2(torch.erfinv(dp * 2 - 1) * self.scale_std).expand_as(s)
            inv.append(_scale2d(1 / s, 1 / s, dev))
        # Rotation is split into a pre- and a post-rotation around the anisotropic scaling, each with
        # probability p_rot so that P(either) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = _gate((torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max, p_rot, 0)
            if dp is not None:
                theta = ((dp * 2 - 1) * math.pi * self.rotate_max).expand_as(theta)
            inv.append(_rotate2d(theta))
        if self.aniso > 0:
            s = _gate(torch.exp2(torch.randn([n], device=dev) * self.aniso_std), self.aniso * p, 1)
            if dp is not None:
                s = torch.exp2(torch.erfinv(dp * 2 - 1) * self.aniso_std).expand_as(s)
            inv.append(_scale2d(1 / s, s, dev))
        if self.rotate > 0:
            theta = _gate((torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max, p_rot, 0)
            if dp is not None:
                theta = torch.zeros_like(theta)
            inv.append(_rotate2d(theta))
        if self.xfrac > 0:
            t = _gate(torch.randn([n, 2], device=dev) * self.xfrac_std, self.xfrac * p, 0)
            if dp is not None:
                t = (torch.erfinv(dp * 2 - 1) * self.xfrac_std).expand_as(t)
            inv.append(_translate2d(-t[:, 0] * w, -t[:, 1] * h, dev))

        if not inv:
            return images
        g = functools.reduce(torch.matmul, inv)

        # Reflect-pad (appendix B) just enough that every sampled pixel, plus the resampling filter's
        # support, lies inside the padded image.
        fpad = self.Hz_geom.shape[0] // 4
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = _matrix([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], dev)
        reach = (g @ corners)[:, :2].permute(1, 0, 2).flatten(1)  # [xy, N * corner]
        margin = torch.cat([-reach, reach]).amax(dim=1)  # [left, top, right, bottom] extent about the centre
        margin = margin + torch.tensor([2 * fpad - cx, 2 * fpad - cy] * 2, device=dev)
        margin = torch.minimum(margin.clamp(min=0), torch.tensor([w - 1, h - 1] * 2, dtype=margin.dtype, device=dev))
        mx0, my0, mx1, my1 = (int(m) for m in margin.ceil().tolist())
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        g = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, dev) @ g

        # Resample at 2x with the orthogonal sym6 wavelet low-pass to suppress aliasing (appendix B).
        f = self._resampling_filter(images)
        images = upsample2d(images, f, up=2)
        g = _scale2d(2, 2, dev) @ g @ _scale2d(0.5, 0.5, dev)
        g = _translate2d(-0.5, -0.5, dev) @ g @ _translate2d(0.5, 0.5, dev)
        out_h, out_w = (h + 2 * fpad) * 2, (w + 2 * fpad) * 2
        g = _scale2d(2 / images.shape[3], 2 / images.shape[2], dev) @ g @ _scale2d(out_w / 2, out_h / 2, dev)
        grid = F.affine_grid(g[:, :2, :].to(images.dtype), [n, c, out_h, out_w], align_corners=False)
        images = _grid_sample(images, grid)
        return downsample2d(images, f, down=2, padding=-2 * fpad, flip_filter=True)

    def _resampling_filter(self, images: torch.Tensor) -> torch.Tensor:
        """sym6 as its 2-D outer product where upfirdn2d takes its fast path (float32, fast paths on; the
        same filter, about 2x faster on CPU), else in the official separable 1-D form (reference numerics)."""
        return self.Hz_geom_2d if fast_paths_enabled() and images.dtype == torch.float32 else self.Hz_geom

    def _color(self, images: torch.Tensor, dp: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        p = self.p
        ops = []  # homogeneous 4x4 colour transforms, applied in list order

        if self.brightness > 0:
            b = _gate(torch.randn([n], device=dev) * self.brightness_std, self.brightness * p, 0)
            if dp is not None:
                b = (torch.erfinv(dp * 2 - 1) * self.brightness_std).expand_as(b)
            ops.append(_matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], dev))
        if self.contrast > 0:
            k = _gate(torch.exp2(torch.randn([n], device=dev) * self.contrast_std), self.contrast * p, 1)
            if dp is not None:
                k = torch.exp2(torch.erfinv(dp * 2 - 1) * self.contrast_std).expand_as(k)
            ops.append(_matrix([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]], dev))
        luma = torch.tensor([1, 1, 1, 0], dtype=torch.float32, device=dev) / math.sqrt(3)
        luma_proj = torch.outer(luma, luma)
        eye = torch.eye(4, device=dev)
        if self.lumaflip > 0:
            i = _gate(torch.floor(torch.rand([n, 1, 1], device=dev) * 2), self.lumaflip * p, 0)
            if dp is not None:
                i = torch.floor(dp * 2).expand_as(i)
            ops.append(eye - 2 * luma_proj * i)  # Householder reflection of the luma axis
        if self.hue > 0 and c > 1:
            theta = _gate((torch.rand([n], device=dev) * 2 - 1) * math.pi * self.hue_max, self.hue * p, 0)
            if dp is not None:
                theta = ((dp * 2 - 1) * math.pi * self.hue_max).expand_as(theta)
            ops.append(_rotate3d_luma(theta))
        if self.saturation > 0 and c > 1:
            s = torch.exp2(torch.randn([n, 1, 1], device=dev) * self.saturation_std)
            s = _gate(s, self.saturation * p, 1)
            if dp is not None:
                s = torch.exp2(torch.erfinv(dp * 2 - 1) * self.saturation_std).expand_as(s)
            ops.append(luma_proj + (eye - luma_proj) * s)  # scale chroma, keep luma

        if not ops:
            return images
        m = functools.reduce(lambda acc, op: op @ acc, ops).to(images.dtype)
        flat = images.reshape(n, c, h * w)
        if c == 1:  # grayscale: the average of the RGB rows acting on a gray pixel (r = g = b)
            m = m[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * m[:, :, :3].sum(dim=2, keepdim=True) + m[:, :, 3:]
        elif c in (3, 4):
            rgb = m[:, :3, :3] @ flat[:, :3] + m[:, :3, 3:]
            flat = rgb if c == 3 else torch.cat([rgb, flat[:, 3:]], dim=1)
        else:
            raise ValueError(f"colour augmentation needs 1, 3 or 4 channels, got {c}")
        return flat.reshape(n, c, h, w)

    def _filter(self, images: torch.Tensor, dp: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        num_bands = self.Hz_fbank.shape[0]
        expected_power = torch.tensor([10, 1, 1, 1], dtype=torch.float32, device=dev) / 13  # ~1/f spectrum

        # Amplify or attenuate each band, renormalising so the expected image power is unchanged.
        gain = torch.ones([n, num_bands], device=dev)
        for band, strength in enumerate(self.imgfilter_bands):
            t_i = torch.exp2(torch.randn([n], device=dev) * self.imgfilter_std)
            t_i = _gate(t_i, self.imgfilter * self.p * strength, 1)
            if dp is not None:
                dp_gain = torch.exp2(torch.erfinv(dp * 2 - 1) * self.imgfilter_std)
                t_i = dp_gain.expand_as(t_i) if strength > 0 else torch.ones_like(t_i)
            t = torch.ones([n, num_bands], device=dev)
            t[:, band] = t_i
            gain = gain * t / (expected_power * t.square()).sum(dim=1, keepdim=True).sqrt()

        taps = (gain @ self.Hz_fbank.float()).to(images.dtype).repeat_interleave(c, dim=0)
        taps = taps[:, None, None, :]  # [N * C, 1, 1, K]
        pad = self.Hz_fbank.shape[1] // 2
        x = F.pad(images.reshape(1, n * c, h, w), [pad] * 4, mode="reflect")
        x = F.conv2d(x, taps, groups=n * c)  # separable: rows, then columns
        x = F.conv2d(x, taps.transpose(2, 3), groups=n * c)
        return x.reshape(n, c, h, w)

    def _corrupt(self, images: torch.Tensor, dp: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        if self.noise > 0:  # additive Gaussian noise with a per-image |N(0, noise_std)| deviation
            sigma = torch.randn([n, 1, 1, 1], device=dev).abs() * self.noise_std
            sigma = _gate(sigma, self.noise * self.p, 0)
            if dp is not None:
                sigma = (torch.erfinv(dp) * self.noise_std).expand_as(sigma)
            images = images + torch.randn([n, c, h, w], device=dev, dtype=images.dtype) * sigma.to(images.dtype)
        if self.cutout > 0:  # zero a rectangle of cutout_size x the image, centred uniformly at random
            size = _gate(torch.full([n, 2, 1, 1, 1], self.cutout_size, device=dev), self.cutout * self.p, 0)
            center = torch.rand([n, 2, 1, 1, 1], device=dev)
            if dp is not None:
                size = torch.full_like(size, self.cutout_size)
                center = dp.expand_as(center)
            xs = (torch.arange(w, device=dev).reshape(1, 1, 1, w) + 0.5) / w
            ys = (torch.arange(h, device=dev).reshape(1, 1, h, 1) + 0.5) / h
            keep = ((xs - center[:, 0]).abs() >= size[:, 0] / 2) | ((ys - center[:, 1]).abs() >= size[:, 1] / 2)
            images = images * keep.to(images.dtype)
        return images


def ada_update(p: torch.Tensor, r_t: float | None, target: float, batch_size: int, interval: int, ada_kimg: float) -> torch.Tensor:
    """The ADA heuristic (StyleGAN2-ADA §2.3), run every `interval` minibatches of `batch_size` images: the new
    augmentation probability max(p + sign(r_t - target) * batch_size * interval / (ada_kimg * 1000), 0), where
    r_t = E[sign(D(real))] over those minibatches; p itself without a finite r_t."""
    if r_t is None or not math.isfinite(r_t):
        return p
    adjust = np.sign(r_t - target) * (batch_size * interval) / (ada_kimg * 1000)
    return (p + adjust).clamp(min=0)


def augment_pipe(spec: str) -> AugmentPipe:
    """An `AugmentPipe` for a preset name of `AUGMENT_PRESETS` ('bgc' is the paper's default)."""
    if spec not in AUGMENT_PRESETS:
        raise ValueError(f"unknown augmentation preset {spec!r}; valid presets: {', '.join(AUGMENT_PRESETS)}")
    return AugmentPipe(**AUGMENT_PRESETS[spec])

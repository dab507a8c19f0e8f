"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for GANs") with progressive growing,
and the StyleGAN2 paper's "revised" growing networks (configs B-D, Table 1).

`style='adain'` follows NVlabs/stylegan `networks_stylegan.py` (G_style / G_mapping / G_synthesis, D_basic)
with TensorFlow's conventions: the equalised-lr weight scale carries the He gain (gain / sqrt(fan_in)),
the bias is added after the scaled convolution / matmul, and the activation has no extra gain.
`style='demod'` follows `G_synthesis_stylegan_revised` / `D_stylegan` of NVlabs/stylegan2 and reuses
our StyleGAN2 layers. The level of detail is the persistent scalar buffer `lod` (0 = full resolution),
blended as TF's growing structures do; blocks whose weight is exactly zero are not computed (TF's
'recursive' structure), which gives the same output as the 'linear' one. For the revised networks the
two TF structures resample whole levels differently; we follow 'recursive', the one TF trains with:
the fading-in step upsamples the lower ToRGB output with the FIR filter, whole levels are scaled by
nearest-neighbour (G) and box (D) resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
import typing
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..nn import Conv2dLayer, FullyConnectedLayer
from ..ops import assert_shape, make_noise, minibatch_stddev, normalize_2nd_moment, setup_filter, upsample2d
from . import stylegan2
from .common import GeneratorConfigBase, MappingNetworkBase, MappingSynthesisGenerator, check_labels, check_resolution, truncate, update_w_avg
from .config import JsonConfig, check_choice

GStyle = Literal["adain", "demod"]
DStyle = Literal["basic", "revised"]
Activation = Literal["lrelu", "relu"]
ACTIVATIONS: tuple[str, ...] = typing.get_args(Activation)


@dataclass
class MappingConfig(stylegan2.MappingConfig):
    """G_mapping of TF StyleGAN (style 'adain'; 'demod' runs StyleGAN2's mapping network): num_layers is TF
    mapping_layers, layer_features mapping_fmaps, lr_multiplier mapping_lrmul; 'adain' embeds labels with z_dim
    features (TF LabelConcat), so embed_features stays None there."""

    w_avg_beta: float | None = 0.995  # decay of the tracked W average (TF dlatent_avg_beta), None = do not track


@dataclass
class SynthesisConfig(JsonConfig):
    style: GStyle = "adain"  # 'adain' = StyleGAN (config A), 'demod' = StyleGAN2 configs B-D
    channel_base: int = 8192  # TF fmap_base: nf(stage) = min(channel_base / 2**stage, channel_max)
    channel_max: int = 512  # maximum number of channels in any layer (TF fmap_max)
    activation: Activation = "lrelu"  # activation function
    use_noise: bool = True  # enable noise inputs
    blur_filter: list[float] | None = field(default_factory=lambda: list[float]((1, 2, 1)))  # adain: low-pass filter after up-sampling, None = none
    fused_scale: bool | Literal["auto"] = "auto"  # adain: fused up-sampling convs: True, False or 'auto' (from 128x128)
    resample_filter: list[float] = field(default_factory=lambda: [1, 3, 3, 1])  # demod: FIR filter of the resampling layers


# The flat layout of generator configs written before the mapping / synthesis split: old key -> (part, new key).
_FLAT_LAYOUT = {
    "mapping_layers": ("mapping", "num_layers"), "mapping_features": ("mapping", "layer_features"),
    "mapping_lr_multiplier": ("mapping", "lr_multiplier"), "w_avg_beta": ("mapping", "w_avg_beta"),
    **{k: ("synthesis", k) for k in ("style", "channel_base", "channel_max", "use_noise", "blur_filter", "fused_scale", "resample_filter")},
}


@dataclass
class GeneratorConfig(GeneratorConfigBase):
    describe = "stylegan1 generator config"
    mapping: MappingConfig = field(default_factory=MappingConfig)  # the mapping network
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)  # the synthesis network

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Configs written before the mapping / synthesis split kept every setting at the top level, with one
        `activation` for both networks."""
        flat = [k for k in data if k in _FLAT_LAYOUT or k == "activation"]
        if not flat:
            return data
        if "mapping" in data or "synthesis" in data:
            raise ValueError(f"{cls.describe}: {', '.join(flat)} belong in 'mapping' / 'synthesis'")
        out: dict[str, Any] = {k: v for k, v in data.items() if k not in flat}
        parts: dict[str, dict[str, Any]] = {"mapping": {}, "synthesis": {}}
        for key in flat:
            for part, new in [_FLAT_LAYOUT[key]] if key != "activation" else [("mapping", key), ("synthesis", key)]:
                parts[part][new] = data[key]
        return {**out, **parts}


@dataclass
class DiscriminatorConfig(JsonConfig):
    describe = "stylegan1 discriminator config"
    c_dim: int = 0  # conditioning label (C) dimensionality, 0 = no labels
    img_resolution: int = 1024  # input resolution
    img_channels: int = 3  # number of input color channels
    style: DStyle = "basic"  # 'basic' = StyleGAN's D_basic, 'revised' = StyleGAN2's D_stylegan
    channel_base: int = 8192  # TF fmap_base, as SynthesisConfig.channel_base
    channel_max: int = 512  # maximum number of channels in any layer
    activation: Activation = "lrelu"  # activation function
    mbstd_group_size: int = 4  # group size of the minibatch standard deviation layer, <= 1 = no such layer (TF)
    mbstd_num_channels: int = 1  # features of the minibatch standard deviation layer
    blur_filter: list[float] | None = field(default_factory=lambda: list[float]((1, 2, 1)))  # basic: low-pass filter before down-sampling
    fused_scale: bool | Literal["auto"] = "auto"  # basic: fused down-sampling convs: True, False or 'auto' (from 128x128)
    resample_filter: list[float] = field(default_factory=lambda: [1, 3, 3, 1])  # revised: FIR filter of the resampling layers


def nf(stage: int, channel_base: int, channel_max: int) -> int:
    """Feature maps of a stage (TF nf with fmap_decay 1); resolution 2**r has nf(r - 1) channels."""
    return min(int(channel_base / 2.0**stage), channel_max)


def _check_channels(img_resolution: int, channel_base: int, channel_max: int) -> None:
    if nf(check_resolution(img_resolution) - 1, channel_base, channel_max) < 1:
        raise ValueError(f"channel_base {channel_base} gives no feature maps at {img_resolution}x{img_resolution}; "
                         f"use channel_base >= {img_resolution // 2}")


def _fused(fused_scale: bool | str, resolution: int) -> bool:
    """TF fused_scale='auto': fused resampling convs where the larger side is >= 128."""
    return resolution >= 128 if fused_scale == "auto" else bool(fused_scale)


def _act(x: torch.Tensor, activation: str) -> torch.Tensor:
    """TF leaky_relu (alpha 0.2) / relu, no gain."""
    if activation == "lrelu":
        return F.leaky_relu(x, 0.2)
    if activation == "relu":
        return F.relu(x)
    return x


def lerp_clip(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """tflib.lerp_clip: a + (b - a) * clamp(t, 0, 1); torch.lerp returns a / b exactly at t = 0 / 1, as
    TF's 'recursive' structure, which computes only the live branch there."""
    return torch.lerp(a, b, min(max(t, 0.0), 1.0))


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upscaling (TF upscale2d)."""
    if factor == 1:
        return x
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def downscale2d(x: torch.Tensor) -> torch.Tensor:
    """2x2 box downscaling (TF downscale2d)."""
    return F.avg_pool2d(x, 2)


def blur2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """TF blur2d: depthwise correlation with the normalised 2-D filter `f`, padding 'SAME'."""
    kh, kw = f.shape
    c = x.shape[1]
    x = F.pad(x, [(kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2])
    return F.conv2d(x, f.to(x.dtype)[None, None].repeat(c, 1, 1, 1), groups=c)


def _blur_filter(taps: list[float] | None) -> torch.Tensor:
    return setup_filter(list(taps) if taps else [1.0], separable=False)


# ----------------------------------------------------------------------------- TF-convention layers


class Dense(torch.nn.Module):
    """TF dense + apply_bias (+ act): y = act(x @ (W * gain * lrmul / sqrt(in)) + b * lrmul)."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2), lr_multiplier: float = 1.0,
                 activation: str = "linear") -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight_gain = gain / math.sqrt(in_features) * lr_multiplier
        self.bias_gain = lr_multiplier
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([out_features]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        assert_shape(x, [None, self.in_features], "Dense input")
        x = x.matmul((self.weight * self.weight_gain).t())
        return _act(x + self.bias * self.bias_gain, self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2d(torch.nn.Module):
    """TF conv2d / upscale2d_conv2d / conv2d_downscale2d with equalised lr (gain / sqrt(fan_in)),
    optionally followed by apply_bias and the activation.

    Fused up-sampling is TF's transposed convolution with the 3x3 kernel padded and summed into 4x4:
    it equals nearest upscaling followed by the spatially flipped 3x3 conv. Fused down-sampling (the
    same 4x4 kernel times 1/4, stride 2) equals the 3x3 conv followed by 2x2 box downscaling.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2), bias: bool = True,
                 activation: str = "linear", up: bool = False, down: bool = False, fused: bool = False) -> None:
        super().__init__()
        assert kernel_size % 2 == 1 and not (up and down)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.fused = fused and (up or down)
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size**2)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "Conv2d input")
        w = self.weight * self.weight_gain
        if self.fused:
            w = F.pad(w, [1, 1, 1, 1])
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            if self.up:
                x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1)
            else:
                x = F.conv2d(x, w * 0.25, stride=2, padding=1)
        else:
            if self.up:
                x = upscale2d(x)
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
            if self.down:
                x = downscale2d(x)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        return _act(x, self.activation)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, "
                f"up={self.up}, down={self.down}, fused={self.fused}")


# ----------------------------------------------------------------------------- mapping


class MappingNetwork(MappingNetworkBase):
    """G_mapping (StyleGAN §2): [z, c @ E] -> pixel norm -> dense layers (lr mul, lrelu) -> w, broadcast to
    num_ws; W-average tracking and truncation as stylegan2.MappingNetwork."""

    num_ws: int

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, cfg: stylegan2.MappingConfig) -> None:
        super().__init__(z_dim, c_dim, w_dim, num_ws, cfg.num_layers, cfg.w_avg_beta)
        check_choice("mapping activation", cfg.activation, ACTIVATIONS)
        if cfg.embed_features is not None:
            raise ValueError(f"embed_features={cfg.embed_features}: the 'adain' mapping embeds labels with z_dim features (TF LabelConcat)")
        if c_dim > 0:  # TF LabelConcat: an unscaled [c_dim, z_dim] embedding
            self.embed = torch.nn.Parameter(torch.randn([c_dim, z_dim]))
        hidden = w_dim if cfg.layer_features is None else cfg.layer_features
        features = [z_dim * (2 if c_dim > 0 else 1)] + [hidden] * (cfg.num_layers - 1) + [w_dim]
        for idx in range(cfg.num_layers):
            layer = Dense(features[idx], features[idx + 1], lr_multiplier=cfg.lr_multiplier, activation=cfg.activation)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        assert_shape(z, [None, self.z_dim], "z")
        x = z.to(torch.float32)
        if self.c_dim > 0:
            x = torch.cat([x, check_labels(c, self.c_dim).to(torch.float32).matmul(self.embed)], dim=1)
        x = normalize_2nd_moment(x)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            update_w_avg(self.w_avg, x, self.w_avg_beta)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return truncate(x, self.w_avg, truncation_psi, truncation_cutoff)


# ----------------------------------------------------------------------------- synthesis (adain)


class StyleLayer(torch.nn.Module):
    """One StyleGAN layer: [conv (up)] -> [blur] -> layer epilogue: noise B -> bias -> act -> instance
    norm -> AdaIN style A (StyleGAN §2, Fig. 1b). in_channels 0 = epilogue of the learned constant."""

    blur_filter: torch.Tensor
    noise_const: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, cfg: SynthesisConfig, up: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.activation = cfg.activation
        self.use_noise = cfg.use_noise
        self.blur = up and bool(cfg.blur_filter)
        if in_channels > 0:
            self.conv = Conv2d(in_channels, out_channels, 3, bias=False, up=up, fused=up and _fused(cfg.fused_scale, resolution))
        if self.blur:
            self.register_buffer("blur_filter", _blur_filter(cfg.blur_filter))
        if cfg.use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([out_channels]))  # TF Noise/weight, per channel
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.affine = Dense(w_dim, 2 * out_channels, gain=1)  # TF StyleMod

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        in_res = self.resolution // 2 if self.up else self.resolution
        assert_shape(x, [None, self.in_channels or self.out_channels, in_res, in_res], f"StyleLayer@{self.resolution} input")
        if self.in_channels > 0:
            x = self.conv(x)
        if self.blur:
            x = blur2d(x, self.blur_filter)
        if self.use_noise:
            noise = make_noise(noise_mode, x.shape[0], self.resolution, self.noise_strength.reshape(1, -1, 1, 1), self.noise_const, x.device)
            if noise is not None:
                x = x + noise
        x = _act(x + self.bias.reshape(1, -1, 1, 1), self.activation)
        x = x - x.mean(dim=[2, 3], keepdim=True)  # instance norm (eps 1e-8, TF)
        x = x * (x.square().mean(dim=[2, 3], keepdim=True) + 1e-8).rsqrt()
        style = self.affine(w).reshape(-1, 2, self.out_channels, 1, 1)  # AdaIN: y_s = style[:, 0] + 1 (TF), y_b
        return x * (style[:, 0] + 1) + style[:, 1]

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, up={self.up}"


class SynthesisBlock(torch.nn.Module):
    """One resolution: (constant | conv0 up) -> conv1, plus the ToRGB of this level of detail."""

    conv0: torch.nn.Module
    conv1: torch.nn.Module
    torgb: torch.nn.Module

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.style = cfg.style
        if cfg.style == "adain":
            if resolution == 4:
                self.const = torch.nn.Parameter(torch.ones([out_channels, 4, 4]))
                self.conv0 = StyleLayer(0, out_channels, w_dim, 4, cfg)
            else:
                self.conv0 = StyleLayer(in_channels, out_channels, w_dim, resolution, cfg, up=True)
            self.conv1 = StyleLayer(out_channels, out_channels, w_dim, resolution, cfg)
            self.torgb = Conv2d(out_channels, img_channels, 1, gain=1)
        else:
            sg2 = _stylegan2_synthesis_config(cfg)
            if resolution == 4:
                self.const = torch.nn.Parameter(torch.randn([out_channels, 4, 4]))
            else:
                self.conv0 = stylegan2.SynthesisLayer(in_channels, out_channels, w_dim, resolution, sg2, up=2)
            self.conv1 = stylegan2.SynthesisLayer(out_channels, out_channels, w_dim, resolution, sg2)
            self.torgb = stylegan2.ToRGBLayer(out_channels, img_channels, w_dim, None)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """ws: all [N, num_ws, w_dim]; layer indices as TF: adain conv0 2r-4, conv1 2r-3; demod conv0 2r-5, conv1 2r-4."""
        r = int(math.log2(self.resolution))
        if self.style == "adain":
            if self.resolution == 4:
                x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv0(x, ws[:, 2 * r - 4], noise_mode=noise_mode)
            return self.conv1(x, ws[:, 2 * r - 3], noise_mode=noise_mode)
        if self.resolution == 4:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = self.conv0(x, ws[:, 2 * r - 5], noise_mode=noise_mode)
        return self.conv1(x, ws[:, 2 * r - 4], noise_mode=noise_mode)

    def rgb(self, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """ToRGB of this level (adain: plain 1x1 conv; demod: modulated by w[2r-3], as TF's revised net)."""
        if self.style == "adain":
            return self.torgb(x)
        return self.torgb(x, ws[:, 2 * int(math.log2(self.resolution)) - 3])

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, style={self.style}"


def _stylegan2_synthesis_config(cfg: SynthesisConfig) -> stylegan2.SynthesisConfig:
    return stylegan2.SynthesisConfig(conv_clamp=None, resample_filter=list(cfg.resample_filter), use_noise=cfg.use_noise,
                                     activation=cfg.activation, num_fp16_res=0)


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, R, R] at the level of detail `lod` (TF G_synthesis)."""

    lod: torch.Tensor
    resample_filter: torch.Tensor

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        super().__init__()
        _check_channels(img_resolution, cfg.channel_base, cfg.channel_max)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = check_resolution(img_resolution)
        self.img_channels = img_channels
        self.style = cfg.style
        self.num_ws = 2 * self.img_resolution_log2 - 2
        self.block_resolutions = [2**r for r in range(2, self.img_resolution_log2 + 1)]
        for res in self.block_resolutions:
            r = int(math.log2(res))
            in_channels = nf(r - 2, cfg.channel_base, cfg.channel_max) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(in_channels, nf(r - 1, cfg.channel_base, cfg.channel_max), w_dim, res, img_channels, cfg))
        self.register_buffer("lod", torch.zeros([]))
        if cfg.style == "demod":
            self.register_buffer("resample_filter", setup_filter(list(cfg.resample_filter)))

    def blend_weight(self, res: int) -> float:
        """Weight of the upscaled lower level in the image at `res`: clamp(lod - (log2 R - log2 res), 0, 1)."""
        return min(max(float(self.lod) - (self.img_resolution_log2 - int(math.log2(res))), 0.0), 1.0)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False, update_emas: bool = False) -> torch.Tensor:
        """`force_fp32` and `update_emas` are accepted for the common calling convention (fp32 only, no EMAs)."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        # The highest level whose own image has nonzero weight; higher blocks are not computed.
        top = max([4] + [res for res in self.block_resolutions if self.blend_weight(res) < 1])
        x = prev = None
        for res in [r for r in self.block_resolutions if r <= top]:
            prev = x
            x = getattr(self, f"b{res}")(x, ws, noise_mode)
        img = getattr(self, f"b{top}").rgb(x, ws)
        t = self.blend_weight(top) if top > 4 else 0.0
        if t > 0:  # fade-in: lerp_clip(torgb(x), upscale(torgb_lower(x_lower)), lod - level)
            lower = getattr(self, f"b{top // 2}").rgb(prev, ws)
            lower = upscale2d(lower) if self.style == "adain" else upsample2d(lower, self.resample_filter)
            img = lerp_clip(img, lower, t)
        return upscale2d(img, self.img_resolution // top)

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, style={self.style}"


class Generator(MappingSynthesisGenerator):
    """StyleGAN generator: G(z, c) = synthesis(mapping(z, c)) (TF G_style); synthesis takes `noise_mode` (and
    `force_fp32` for the common calling convention)."""

    synthesis_class = SynthesisNetwork

    def make_mapping(self, cfg: GeneratorConfig) -> torch.nn.Module:
        """TF G_mapping for 'adain', StyleGAN2's mapping network for the revised networks ('demod')."""
        mapping_class = MappingNetwork if cfg.synthesis.style == "adain" else stylegan2.MappingNetwork
        return mapping_class(cfg.z_dim, cfg.c_dim, cfg.w_dim, self.num_ws, cfg.mapping)


# ----------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(torch.nn.Module):
    """fromRGB of this level, and (above 4x4) conv0 -> [blur] -> conv1 down (TF D_basic / D_stylegan block)."""

    blur_filter: torch.Tensor
    fromrgb: torch.nn.Module
    conv0: torch.nn.Module
    conv1: torch.nn.Module

    def __init__(self, resolution: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.resolution = resolution
        self.style = cfg.style
        r = int(math.log2(resolution))
        ch = nf(r - 1, cfg.channel_base, cfg.channel_max)
        out = nf(r - 2, cfg.channel_base, cfg.channel_max)
        act = cfg.activation
        basic = cfg.style == "basic"
        self.fromrgb = Conv2d(cfg.img_channels, ch, 1, activation=act) if basic else \
            Conv2dLayer(cfg.img_channels, ch, 1, activation=act)
        if resolution == 4:
            return
        if basic:
            self.blur = bool(cfg.blur_filter)
            if self.blur:
                self.register_buffer("blur_filter", _blur_filter(cfg.blur_filter))
            self.conv0 = Conv2d(ch, ch, 3, activation=act)
            self.conv1 = Conv2d(ch, out, 3, activation=act, down=True, fused=_fused(cfg.fused_scale, resolution))
        else:
            self.conv0 = Conv2dLayer(ch, ch, 3, activation=act)
            self.conv1 = Conv2dLayer(ch, out, 3, activation=act, down=2, resample_filter=cfg.resample_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x)
        if self.style == "basic" and self.blur:
            x = blur2d(x, self.blur_filter)
        return self.conv1(x)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, style={self.style}"


class DiscriminatorEpilogue(DiscriminatorBlock):
    """4x4: fromRGB, minibatch stddev -> conv -> dense nf(0) -> dense max(c_dim, 1) (gain 1)."""

    conv: torch.nn.Module
    fc: Dense | FullyConnectedLayer
    out: torch.nn.Module

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__(4, cfg)
        ch = nf(1, cfg.channel_base, cfg.channel_max)
        self.mbstd_group_size = cfg.mbstd_group_size
        self.mbstd_num_channels = cfg.mbstd_num_channels if cfg.mbstd_group_size > 1 else 0
        in_ch = ch + self.mbstd_num_channels
        out_dim = max(cfg.c_dim, 1)
        if cfg.style == "basic":
            self.conv = Conv2d(in_ch, ch, 3, activation=cfg.activation)
            self.fc = Dense(ch * 16, nf(0, cfg.channel_base, cfg.channel_max), activation=cfg.activation)
            self.out = Dense(self.fc.out_features, out_dim, gain=1)
        else:
            self.conv = Conv2dLayer(in_ch, ch, 3, activation=cfg.activation)
            self.fc = FullyConnectedLayer(ch * 16, nf(0, cfg.channel_base, cfg.channel_max), activation=cfg.activation)
            self.out = FullyConnectedLayer(self.fc.out_features, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        return self.out(self.fc(self.conv(x).flatten(1)))


class Discriminator(torch.nn.Module):
    """StyleGAN discriminator D(img, c) -> [N, 1] at the level of detail `lod` (TF D_basic / D_stylegan)."""

    lod: torch.Tensor

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        _check_channels(cfg.img_resolution, cfg.channel_base, cfg.channel_max)
        self.config = cfg
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_resolution_log2 = check_resolution(cfg.img_resolution)
        self.img_channels = cfg.img_channels
        self.block_resolutions = [2**r for r in range(self.img_resolution_log2, 2, -1)]
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(res, cfg))
        self.b4 = DiscriminatorEpilogue(cfg)
        self.register_buffer("lod", torch.zeros([]))

    def blend_weight(self, res: int) -> float:
        """Weight of fromRGB(downscaled image) against block `res`'s output: clamp(lod - (log2 R - log2 res), 0, 1)."""
        return min(max(float(self.lod) - (self.img_resolution_log2 - int(math.log2(res))), 0.0), 1.0)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False, force_fp32: bool = False) -> torch.Tensor:
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "D input image")
        if self.c_dim > 0:
            check_labels(c, self.c_dim, "discriminator")
        img = img.to(torch.float32)
        # The entry level: the highest resolution whose block has nonzero weight.
        entry = max([4] + [res for res in self.block_resolutions if self.blend_weight(res) < 1])
        res = self.img_resolution
        while res > entry:
            img = downscale2d(img)
            res //= 2
        x = getattr(self, f"b{entry}").fromrgb(img)
        for res in [r for r in self.block_resolutions if r <= entry]:
            x = getattr(self, f"b{res}")(x)
            t = self.blend_weight(res)
            if t > 0:  # fade-in: lerp_clip(block(x), fromrgb(downscale(img)), lod - level)
                img = downscale2d(img)
                x = lerp_clip(x, getattr(self, f"b{res // 2}").fromrgb(img), t)
        x = self.b4(x)
        if self.c_dim > 0:  # label conditioning (Mescheder et al. 2018), as D_basic
            x = (x * check_labels(c, self.c_dim, "discriminator").to(torch.float32)).sum(dim=1, keepdim=True)
        return x

    def extra_repr(self) -> str:
        return f"img_resolution={self.img_resolution}, c_dim={self.c_dim}, style={self.config.style}"

"""StyleGAN2 generator and discriminator ("Analyzing and Improving the Image Quality of StyleGAN").

Module and tensor names follow NVlabs' `networks_stylegan2.py`, so official state dicts load 1:1 and
user code that addresses e.g. `G.synthesis.b64.conv1.affine` keeps working.
"""

from __future__ import annotations

import contextlib
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..nn import Conv2dLayer, FullyConnectedLayer
from ..ops import (
    activation_gain,
    assert_shape,
    bias_act,
    downsample2d,
    fast_paths,
    fast_paths_enabled,
    make_noise,
    minibatch_stddev,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)
from .common import (GeneratorConfigBase, MappingNetworkBase, MappingSynthesisGenerator, block_dtype, check_labels, check_resolution,
                     truncate, update_w_avg)
from .config import JsonConfig, config_to_dict

Architecture = Literal["orig", "skip", "resnet"]
ARCHITECTURES: tuple[str, ...] = typing.get_args(Architecture)


@dataclass
class MappingConfig(JsonConfig):
    num_layers: int = 8  # number of mapping layers
    embed_features: int | None = None  # label embedding dimensionality, None = w_dim
    layer_features: int | None = None  # features of the intermediate mapping layers, None = w_dim
    activation: str = "lrelu"  # activation function of the mapping layers
    lr_multiplier: float = 0.01  # learning rate multiplier of the mapping layers
    w_avg_beta: float | None = 0.998  # decay of the tracked W average (truncation's centre), None = do not track


@dataclass
class SynthesisConfig(JsonConfig):
    channel_base: int = 32768  # overall multiplier of the number of channels: min(channel_base / res, channel_max)
    channel_max: int = 512  # maximum number of channels in any layer
    num_fp16_res: int = 4  # the N highest resolutions run in fp16 (on CUDA, see fp16_cuda_only)
    conv_clamp: float | None = 256  # clamp the outputs of convolution layers to +-X, None = no clamping
    architecture: Architecture = "skip"  # 'orig', 'skip' or 'resnet'
    resample_filter: list[float] = field(default_factory=lambda: [1, 3, 3, 1])  # low-pass filter of the resampling layers
    use_noise: bool = True  # enable noise inputs
    activation: str = "lrelu"  # activation function of the convolution layers
    kernel_size: int = 3  # convolution kernel size
    fp16_channels_last: bool = False  # channels-last memory format in the fp16 layers
    fp16_cuda_only: bool = True  # fp16 blocks compute in fp16 on CUDA only; False = on every device (stylegan2-ada-pytorch)
    fused_modconv_default: bool | Literal["inference_only"] = True  # fused modulated convolution: True, False or 'inference_only'


@dataclass
class GeneratorConfig(GeneratorConfigBase):
    describe = "generator config"
    mapping: MappingConfig = field(default_factory=MappingConfig)  # the mapping network
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)  # the synthesis network


@dataclass
class DiscriminatorConfig(JsonConfig):
    describe = "discriminator config"
    c_dim: int = 0  # conditioning label (C) dimensionality, 0 = no labels
    img_resolution: int = 1024  # input resolution
    img_channels: int = 3  # number of input color channels
    architecture: Architecture = "resnet"  # 'orig', 'skip' or 'resnet'
    channel_base: int = 32768  # overall multiplier of the number of channels: min(channel_base / res, channel_max)
    channel_max: int = 512  # maximum number of channels in any layer
    num_fp16_res: int = 4  # the N highest resolutions run in fp16 (on CUDA, see fp16_cuda_only)
    conv_clamp: float | None = 256  # clamp the outputs of convolution layers to +-X, None = no clamping
    cmap_dim: int | None = None  # dimensionality of the mapped label (projection), None = channels at 4x4
    activation: str = "lrelu"  # activation function
    resample_filter: list[float] = field(default_factory=lambda: [1, 3, 3, 1])  # low-pass filter of the resampling layers
    freeze_layers: int = 0  # freeze the first N layers (fine-tuning with --freezed)
    fp16_channels_last: bool = False  # channels-last memory format in the fp16 layers
    fp16_cuda_only: bool = True  # as SynthesisConfig.fp16_cuda_only
    mbstd_group_size: int | None = 4  # group size of the minibatch standard deviation layer, None = whole minibatch
    mbstd_num_channels: int = 1  # features of the minibatch standard deviation layer, 0 = no such layer
    mapping: MappingConfig = field(default_factory=MappingConfig)  # label embedding (conditional D only)


# ----------------------------------------------------------------------------- mapping


class MappingNetwork(MappingNetworkBase):
    """z (and c) -> w: 2nd-moment normalisation, MLP with lr multiplier, W-average tracking, truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, cfg: MappingConfig) -> None:
        super().__init__(z_dim, c_dim, w_dim, num_ws, cfg.num_layers, cfg.w_avg_beta)
        embed_features = w_dim if cfg.embed_features is None else cfg.embed_features
        if c_dim == 0:
            embed_features = 0
        layer_features = w_dim if cfg.layer_features is None else cfg.layer_features
        features = [z_dim + embed_features] + [layer_features] * (cfg.num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(cfg.num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=cfg.activation, lr_multiplier=cfg.lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and cfg.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        x = normalize_2nd_moment(assert_shape(z, [None, self.z_dim], "z").to(torch.float32)) if self.z_dim > 0 else None
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(check_labels(c, self.c_dim).to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        assert x is not None, "a mapping network needs z or c"
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            update_w_avg(self.w_avg, x, self.w_avg_beta)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            assert self.w_avg_beta is not None, "truncation needs a W average"
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff if self.num_ws is not None else None)
        return x


# ----------------------------------------------------------------------------- synthesis


class SynthesisLayer(torch.nn.Module):
    """Style block conv: affine A -> modulated, demodulated 3x3 conv -> noise B -> bias + lrelu."""

    resample_filter: torch.Tensor
    noise_const: torch.Tensor

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, cfg: SynthesisConfig,
        up: int = 1, channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = cfg.use_noise
        self.activation = cfg.activation
        self.conv_clamp = cfg.conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(cfg.resample_filter)))
        self.padding = cfg.kernel_size // 2
        self.act_gain = activation_gain(cfg.activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        k = cfg.kernel_size
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, k, k]).to(memory_format=memory_format))
        if cfg.use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1) -> torch.Tensor:
        in_res = self.resolution // self.up
        assert_shape(x, [None, self.in_channels, in_res, in_res], f"SynthesisLayer@{self.resolution} input")
        styles = self.affine(w)
        noise = None
        if self.use_noise:
            noise = make_noise(noise_mode, x.shape[0], self.resolution, self.noise_strength, self.noise_const, x.device)
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            flip_weight=self.up == 1, fused_modconv=fused_modconv,
        )
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGBLayer(torch.nn.Module):
    """tRGB: modulated 1x1 conv without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None, channels_last: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


def _exact_fp16_ops(blocks: list[SynthesisBlock] | list[DiscriminatorBlock], force_fp32: bool,
                    device: torch.device) -> contextlib.AbstractContextManager:
    """Reference ops for networks that compute fp16 blocks off CUDA.

    That mode exists to reproduce stylegan2-ada-pytorch's CPU outputs; fp16 rounding amplifies the
    float32 summation-order differences of the ops' fast paths far beyond them, so those networks run
    the reference (bit-exact) op paths. Everything else keeps the fast paths.
    """
    if device.type != "cuda" and fast_paths_enabled():
        for b in blocks:
            if block_dtype(b.use_fp16, force_fp32, b.fp16_cuda_only, device) == torch.float16:
                return fast_paths(False)
    return contextlib.nullcontext()


def _resolve_fused_modconv(fused_modconv: bool | str | None, default: bool | str, training: bool) -> bool:
    value = default if fused_modconv is None else fused_modconv
    if value == "inference_only":
        return not training
    return bool(value)


class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: (const | upsampling conv0) -> conv1 -> optional tRGB."""

    resample_filter: torch.Tensor

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int, is_last: bool,
        cfg: SynthesisConfig, use_fp16: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = cfg.architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and cfg.fp16_channels_last
        self.fp16_cuda_only = cfg.fp16_cuda_only
        self.fused_modconv_default = cfg.fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(cfg.resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, cfg, up=2, channels_last=self.channels_last)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, cfg, channels_last=self.channels_last)
        self.num_conv += 1
        if is_last or cfg.architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, cfg.conv_clamp, channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and cfg.architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=cfg.resample_filter,
                channels_last=self.channels_last,
            )

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, force_fp32: bool = False,
        fused_modconv: bool | str | None = None, noise_mode: str = "random",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], f"block {self.resolution} ws")
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, force_fp32, self.fp16_cuda_only, ws.device)
        memory_format = torch.channels_last if self.channels_last and dtype == torch.float16 else torch.contiguous_format
        fused = _resolve_fused_modconv(fused_modconv, self.fused_modconv_default, self.training)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2], f"block {self.resolution} x")
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        assert x.dtype == dtype
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at resolution `res`: min(channel_base / res, channel_max)."""
    return min(channel_base // res, channel_max)


class SynthesisNetwork(torch.nn.Module):
    """w+ [N, num_ws, w_dim] -> image [N, C, H, W] (float32, not clamped)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = check_resolution(img_resolution)
        self.img_channels = img_channels
        self.num_fp16_res = cfg.num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - cfg.num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_at(res // 2, cfg.channel_base, cfg.channel_max) if res > 4 else 0
            out_channels = channels_at(res, cfg.channel_base, cfg.channel_max)
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, out_channels, w_dim, res, img_channels, is_last, cfg, use_fp16=res >= fp16_resolution)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False, fused_modconv: bool | str | None = None,
                update_emas: bool = False) -> torch.Tensor:
        """`update_emas` is accepted for the StyleGAN3 calling convention; this network keeps no EMAs."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        blocks = [getattr(self, f"b{res}") for res in self.block_resolutions]
        with _exact_fp16_ops(blocks, force_fp32, ws.device):
            for block in blocks:
                cur_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
                w_idx += block.num_conv
                x, img = block(x, img, cur_ws, force_fp32=force_fp32, fused_modconv=fused_modconv, noise_mode=noise_mode)
        assert img is not None
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"


class Generator(MappingSynthesisGenerator):
    """StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c)); synthesis takes `noise_mode`, `force_fp32` and
    `fused_modconv`."""

    synthesis_class = SynthesisNetwork
    mapping_class = MappingNetwork


# ----------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(torch.nn.Module):
    """fromRGB (first block or skip) -> conv0 -> downsampling conv1 (+ resnet skip)."""

    resample_filter: torch.Tensor

    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, first_layer_idx: int,
        cfg: DiscriminatorConfig, use_fp16: bool = False,
    ) -> None:
        super().__init__()
        assert in_channels in (0, tmp_channels)
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = cfg.img_channels
        self.architecture = cfg.architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and cfg.fp16_channels_last
        self.fp16_cuda_only = cfg.fp16_cuda_only
        self.register_buffer("resample_filter", setup_filter(list(cfg.resample_filter)))
        self.num_layers = 0

        def trainable() -> bool:
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= cfg.freeze_layers

        common: dict[str, Any] = dict(activation=cfg.activation, conv_clamp=cfg.conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, kernel_size=3, down=2, resample_filter=cfg.resample_filter, trainable=trainable(), **common
        )
        if cfg.architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2, resample_filter=cfg.resample_filter,
                trainable=trainable(), channels_last=self.channels_last,
            )

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        first = x if x is not None else img
        assert first is not None
        dtype = block_dtype(self.use_fp16, force_fp32, self.fp16_cuda_only, first.device)
        memory_format = torch.channels_last if self.channels_last and dtype == torch.float16 else torch.contiguous_format
        if x is not None:
            assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], f"D block {self.resolution} x")
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], "D input image")
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        assert x.dtype == dtype
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class MinibatchStdLayer(torch.nn.Module):
    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size, self.num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(torch.nn.Module):
    """4x4 head: (skip fromRGB) -> minibatch stddev -> conv -> fc -> out (-> projection on cmap)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = cfg.img_channels
        self.architecture = cfg.architecture
        if cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, in_channels, kernel_size=1, activation=cfg.activation)
        self.mbstd = MinibatchStdLayer(cfg.mbstd_group_size, cfg.mbstd_num_channels) if cfg.mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + cfg.mbstd_num_channels, in_channels, kernel_size=3, activation=cfg.activation,
                                conv_clamp=cfg.conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=cfg.activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "D epilogue x")
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if cmap is not None:  # projection discriminator (Miyato & Koyama 2018)
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(torch.nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> logits [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_resolution_log2 = check_resolution(cfg.img_resolution)
        self.img_channels = cfg.img_channels
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        ch = {res: channels_at(res, cfg.channel_base, cfg.channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - cfg.num_fp16_res), 8)
        cmap_dim = ch[4] if cfg.cmap_dim is None else cfg.cmap_dim
        if cfg.c_dim == 0:
            cmap_dim = 0
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = ch[res] if res < cfg.img_resolution else 0
            block = DiscriminatorBlock(in_channels, ch[res], ch[res // 2], res, layer_idx, cfg, use_fp16=res >= fp16_resolution)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if cfg.c_dim > 0:
            mapping_cfg = MappingConfig(**{**config_to_dict(cfg.mapping), "w_avg_beta": None})
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, None, mapping_cfg)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim, 4, cfg)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "D input image")
        x = None
        blocks = [getattr(self, f"b{res}") for res in self.block_resolutions]
        with _exact_fp16_ops(blocks, force_fp32, img.device):
            for block in blocks:
                x, img = block(x, img, force_fp32=force_fp32)
            cmap = self.mapping(None, c) if self.c_dim > 0 else None
            return self.b4(x, img, cmap)

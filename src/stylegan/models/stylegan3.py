"""StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", configs T and R).

Module and tensor names follow NVlabs' `networks_stylegan3.py` (`synthesis.input`, `synthesis.L3_52_64`,
`up_filter`, `magnitude_ema`, ...), so official state dicts load 1:1. The discriminator of StyleGAN3 is the
StyleGAN2 one (`stylegan2.Discriminator`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..nn import FullyConnectedLayer
from ..ops import NOISE_MODES, assert_shape, design_lowpass_filter, filtered_lrelu, modulated_conv2d_sg3
from . import common
from .common import GeneratorConfigBase, MappingSynthesisGenerator, block_dtype
from .config import JsonConfig
from .stylegan2 import MappingConfig, MappingNetwork


@dataclass
class SynthesisConfig(JsonConfig):
    channel_base: int = 32768  # overall multiplier of the number of channels
    channel_max: int = 512  # maximum number of channels in any layer
    num_layers: int = 14  # layers between the Fourier features and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2  # cutoff frequency of the first layer, f_{c,0}
    first_stopband: float = 2**2.1  # minimum stopband of the first layer, f_{t,0}
    last_stopband_rel: float = 2**0.3  # minimum stopband of the last layer relative to its cutoff, f_{t,N} / f_{c,N}
    margin_size: int = 10  # extra pixels around the image in the intermediate layers
    output_scale: float = 0.25  # scale factor of the output image
    num_fp16_res: int = 4  # layers whose sampling rate is among the N highest run in fp16 on CUDA
    conv_kernel: int = 3  # convolution kernel size: 3 for config T, 1 for config R (ToRGB is always 1x1)
    filter_size: int = 6  # low-pass taps relative to the lower rate when up/downsampling
    lrelu_upsampling: int = 2  # relative sampling rate of the nonlinearity
    use_radial_filters: bool = False  # radially symmetric (jinc) downsampling filters: config R
    conv_clamp: float | None = 256  # clamp the outputs of convolution layers to +-X, None = no clamping
    magnitude_ema_beta: float = 0.999  # decay of the input magnitude EMA of each layer


@dataclass
class GeneratorConfig(GeneratorConfigBase):
    describe = "generator config"
    mapping: MappingConfig = field(default_factory=lambda: MappingConfig(num_layers=2))  # the mapping network
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)  # the alias-free synthesis network


def stylegan3_config(config: str, img_resolution: int, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0, img_channels: int = 3,
                     channel_base: int = 32768, channel_max: int = 512) -> GeneratorConfig:
    """Generator of `--cfg=stylegan3-t` or `stylegan3-r` as NVlabs' train.py sets it up: R doubles the
    channel budget, uses 1x1 convolutions and radial downsampling filters."""
    if config not in ("stylegan3-t", "stylegan3-r"):
        raise ValueError(f"config must be 'stylegan3-t' or 'stylegan3-r', got {config!r}")
    synthesis = SynthesisConfig(channel_base=channel_base, channel_max=channel_max)
    if config == "stylegan3-r":
        synthesis.conv_kernel = 1
        synthesis.channel_base *= 2
        synthesis.channel_max *= 2
        synthesis.use_radial_filters = True
    return GeneratorConfig(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                           synthesis=synthesis)


# ----------------------------------------------------------------------------- layer schedule


@dataclass(frozen=True)
class LayerSpec:
    """Everything SynthesisNetwork derives for one layer (frequencies in cycles per unit image width)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int  # rate of the nonlinearity
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int  # 1 = no filter
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1 with respect to the upsampled image


def layer_spec(
    name: str, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool, in_channels: int, out_channels: int,
    in_size: int, out_size: int, in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
    in_half_width: float, out_half_width: float, conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
    use_radial_filters: bool = False,
) -> LayerSpec:
    """What the official `SynthesisLayer` derives from its constructor arguments: the rate of the nonlinearity,
    up/down factors, filter taps, the 1x1 ToRGB kernel and the padding (appendix C.3)."""
    tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
    if tmp_rate % in_sampling_rate or tmp_rate % out_sampling_rate:
        raise ValueError(f"{name}: sampling rates {in_sampling_rate} -> {out_sampling_rate} do not divide the nonlinearity's rate {tmp_rate}")
    up, down = tmp_rate // in_sampling_rate, tmp_rate // out_sampling_rate
    kernel = 1 if is_torgb else conv_kernel
    up_taps = filter_size * up if up > 1 and not is_torgb else 1
    down_taps = filter_size * down if down > 1 and not is_torgb else 1
    pad_total = (out_size - 1) * down + 1  # output size before downsampling
    pad_total -= (in_size + kernel - 1) * up  # size after the (full) convolution and upsampling
    pad_total += up_taps + down_taps - 2  # size lost to the two filters
    pad_lo = (pad_total + up) // 2  # symmetric interpretation of sample locations (appendix C.3)
    pad_hi = pad_total - pad_lo
    return LayerSpec(
        name=name, is_torgb=is_torgb, is_critically_sampled=is_critically_sampled, use_fp16=use_fp16,
        in_channels=in_channels, out_channels=out_channels, in_size=in_size, out_size=out_size,
        in_sampling_rate=in_sampling_rate, out_sampling_rate=out_sampling_rate, tmp_sampling_rate=tmp_rate,
        in_cutoff=in_cutoff, out_cutoff=out_cutoff, in_half_width=in_half_width, out_half_width=out_half_width,
        conv_kernel=kernel, up_factor=up, down_factor=down, up_taps=up_taps, down_taps=down_taps,
        down_radial=use_radial_filters and not is_critically_sampled, padding=(pad_lo, pad_hi, pad_lo, pad_hi),
    )


def synthesis_schedule(img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> list[LayerSpec]:
    """Per-layer cutoffs, stopbands, sampling rates, sizes and filters (paper §3.2 and appendix F);
    the Fourier-feature input has layer 0's input specification."""
    if cfg.num_layers <= cfg.num_critical:
        raise ValueError(f"num_layers ({cfg.num_layers}) must exceed num_critical ({cfg.num_critical})")
    n = cfg.num_layers
    last_cutoff = img_resolution / 2  # f_{c,N}
    last_stopband = last_cutoff * cfg.last_stopband_rel  # f_{t,N}
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents  # f_c[i], geometric
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents  # f_t[i]
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))  # s[i]
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs  # f_h[i]
    sizes = sampling_rates + cfg.margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = img_channels

    layers = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        layers.append(layer_spec(
            name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", is_torgb=idx == n, is_critically_sampled=idx >= n - cfg.num_critical,
            use_fp16=bool(sampling_rates[idx] * 2**cfg.num_fp16_res > img_resolution),
            in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=cfg.conv_kernel, filter_size=cfg.filter_size, lrelu_upsampling=cfg.lrelu_upsampling,
            use_radial_filters=cfg.use_radial_filters,
        ))
    return layers


# ----------------------------------------------------------------------------- layers


class SynthesisInput(torch.nn.Module):
    """Fourier features (§3.1): sinusoids of random frequencies in the band disc, rotated and translated per
    sample by an affine of w, then the user transform `transform` (the inverse of the wanted image transform)."""

    transform: torch.Tensor
    freqs: torch.Tensor
    phases: torch.Tensor

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = size
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        freqs = torch.randn([channels, 2])  # uniform-ish in the disc of radius `bandwidth`
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # starts as the identity transform: (r_c, r_s, t_x, t_y) = (1, 0, 0, 0)
            self.affine.weight.zero_()
            assert self.affine.bias is not None
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert_shape(w, [None, self.w_dim], "SynthesisInput w")
        transforms = self.transform.unsqueeze(0)  # [1,3,3]
        freqs = self.freqs.unsqueeze(0)  # [1,C,2]
        phases = self.phases.unsqueeze(0)  # [1,C]

        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # unit rotation
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # inverse rotation
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # inverse translation
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ transforms  # rotate, translate, then the user transform

        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies that the user transform pushed beyond the band.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grids = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)

        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N,H,W,C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N,C,H,W]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, sampling_rate={self.sampling_rate:g}, "
                f"bandwidth={self.bandwidth:g}")


class SynthesisLayer(torch.nn.Module):
    """Modulated conv (input normalised by the magnitude EMA) -> filtered leaky ReLU (§3.2); ToRGB when last."""

    magnitude_ema: torch.Tensor
    up_filter: torch.Tensor | None
    down_filter: torch.Tensor | None

    def __init__(self, w_dim: int, spec: LayerSpec, cfg: SynthesisConfig) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.spec = spec
        self.is_torgb = spec.is_torgb
        self.use_fp16 = spec.use_fp16
        self.in_channels = spec.in_channels
        self.out_channels = spec.out_channels
        self.in_size = spec.in_size
        self.out_size = spec.out_size
        self.conv_kernel = spec.conv_kernel
        self.conv_clamp = cfg.conv_clamp
        self.magnitude_ema_beta = cfg.magnitude_ema_beta
        self.up_factor = spec.up_factor
        self.down_factor = spec.down_factor
        self.padding = list(spec.padding)
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, spec.conv_kernel, spec.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", design_lowpass_filter(
            spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            spec.down_taps, spec.out_cutoff, spec.out_half_width * 2, spec.tmp_sampling_rate, radial=spec.down_radial))

    def forward(self, x: torch.Tensor, w: torch.Tensor, force_fp32: bool = False, update_emas: bool = False) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.in_size, self.in_size], f"{self.spec.name} input")
        assert_shape(w, [x.shape[0], self.w_dim], f"{self.spec.name} w")
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()  # normalise the input to unit mean square
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel**2))
        dtype = block_dtype(self.use_fp16, force_fp32, True, x.device)
        x = modulated_conv2d_sg3(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)
        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        x = filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), up=self.up_factor,
                           down=self.down_factor, padding=self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)
        assert x.dtype == dtype and x.shape[2:] == (self.out_size, self.out_size)
        return x

    def extra_repr(self) -> str:
        s = self.spec
        return (f"in_channels={s.in_channels}, out_channels={s.out_channels}, in_size={s.in_size}, out_size={s.out_size}, "
                f"sampling_rate={s.in_sampling_rate}->{s.out_sampling_rate}, cutoff={s.in_cutoff:g}->{s.out_cutoff:g}, "
                f"up={s.up_factor}, down={s.down_factor}, is_torgb={s.is_torgb}, use_fp16={s.use_fp16}")


class SynthesisBase(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W] (float32, not clamped): Fourier features at the first layer's input
    specification, then the given alias-free layers (ToRGB last), each built from its spec and settings, then output
    scaling. StyleGAN3's synthesis network derives its layers from its schedule, StyleGAN-XL's lists them."""

    num_layers: int

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, output_scale: float,
                 layers: list[tuple[LayerSpec, SynthesisConfig]]) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = len(layers) + 1
        self.output_scale = output_scale
        first = layers[0][0]
        self.input = SynthesisInput(w_dim, first.in_channels, first.in_size, first.in_sampling_rate, first.in_cutoff)
        self.layer_names: list[str] = []
        for spec, layer_cfg in layers:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, layer_cfg))
            self.layer_names.append(spec.name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False, update_emas: bool = False) -> torch.Tensor:
        """`noise_mode` is accepted for a uniform calling convention; StyleGAN3 has no noise inputs."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        w_all = ws.to(torch.float32).unbind(dim=1)
        x = self.input(w_all[0])
        for name, w in zip(self.layer_names, w_all[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}")


class SynthesisNetwork(SynthesisBase):
    """StyleGAN3's synthesis network: num_layers alias-free layers and ToRGB, as `synthesis_schedule` derives them."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        schedule = synthesis_schedule(img_resolution, img_channels, cfg)
        super().__init__(w_dim, img_resolution, img_channels, cfg.output_scale, [(spec, cfg) for spec in schedule])
        self.num_layers = cfg.num_layers
        self.schedule = schedule


class Generator(MappingSynthesisGenerator):
    """StyleGAN3 generator: G(z, c) = synthesis(mapping(z, c)), with the alias-free synthesis network (which takes
    `noise_mode` for the common calling convention and `force_fp32`)."""

    synthesis_class = SynthesisNetwork
    mapping_class = MappingNetwork


def make_transform(translate: tuple[float, float] = (0, 0), angle: float = 0) -> np.ndarray:
    """Rotation by `angle` degrees and translation as NVIDIA's gen_images.py builds it (float64 [3,3])."""
    m = np.eye(3)
    s = np.sin(angle / 360.0 * np.pi * 2)
    c = np.cos(angle / 360.0 * np.pi * 2)
    m[0, 0], m[0, 1], m[0, 2] = c, s, translate[0]
    m[1, 0], m[1, 1], m[1, 2] = -s, c, translate[1]
    return m


def set_transform(G: common.Generator, translate: tuple[float, float] = (0, 0), angle: float = 0) -> None:
    """Make StyleGAN3 generator `G` translate and rotate its output: stores the inverse of
    `make_transform(translate, angle)` in `G.synthesis.input.transform`, as gen_images.py does."""
    inp = getattr(getattr(G, "synthesis", None), "input", None)
    if not isinstance(inp, SynthesisInput):
        raise ValueError(f"{type(G).__name__} has no Fourier-feature input: only StyleGAN3 generators can be translated or rotated")
    with torch.no_grad():
        inp.transform.copy_(torch.from_numpy(np.linalg.inv(make_transform(translate, angle))))

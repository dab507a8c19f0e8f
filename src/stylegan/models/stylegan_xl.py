"""StyleGAN-XL generator ("StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets", Sauer, Schwarz, Geiger 2022).

A StyleGAN3 synthesis network grown stage by stage: a stem (16² in the paper) is trained first, then each
super-resolution stage drops the stem's critically sampled layers and ToRGB and appends new head layers
(`grow`). Labels enter through a pretrained class embedding, and truncation is class-wise. Module and tensor
names follow autonomousvision/stylegan-xl `training/networks_stylegan3_resetting.py`, so official state dicts
load 1:1; the layers are StyleGAN3's (`stylegan3.SynthesisInput`, `stylegan3.SynthesisLayer`).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import numpy as np
import torch

from ..nn import FullyConnectedLayer
from ..ops import assert_shape, normalize_2nd_moment
from . import stylegan3
from .common import GeneratorConfigBase, MappingNetworkBase, MappingSynthesisGenerator, check_labels, truncate, update_w_avg
from .config import JsonConfig
from .stylegan3 import LayerSpec, layer_spec, synthesis_schedule

ClassEmbed = Literal["imagenet", "random"]
CLASS_EMBEDS: tuple[ClassEmbed, ...] = typing.get_args(ClassEmbed)
UP_FACTORS = (2, 4, 8, 16)  # SuperresGenerator's supported growth factors
HEAD_NUM_CRITICAL = 2  # SuperresGenerator's exponents use num_critical=2 whatever the stem's


@dataclass
class LayerConfig(JsonConfig):
    """One synthesis layer: its official name and the official `SynthesisLayer` constructor arguments (w_dim aside)."""

    name: str  # official module name, L{index}_{out_size}_{out_channels}
    is_torgb: bool  # the last layer: 1x1 modulated conv without demodulation, no nonlinearity
    is_critically_sampled: bool  # cutoff at half the sampling rate (the last num_critical layers)
    use_fp16: bool  # fp16 on CUDA (never on other devices)
    in_channels: int  # number of input channels
    out_channels: int  # number of output channels
    in_size: int  # input width and height, margin included
    out_size: int  # output width and height, margin included
    in_sampling_rate: int  # input sampling rate, s
    out_sampling_rate: int  # output sampling rate
    in_cutoff: float  # input cutoff frequency, f_c
    out_cutoff: float  # output cutoff frequency
    in_half_width: float  # input transition band half-width, f_h
    out_half_width: float  # output transition band half-width
    conv_kernel: int = 3  # convolution kernel size as passed; ToRGB uses 1x1 whatever this says
    filter_size: int = 6  # low-pass taps relative to the lower rate when up/downsampling
    lrelu_upsampling: int = 2  # relative sampling rate of the nonlinearity
    use_radial_filters: bool = False  # radially symmetric downsampling filters (config R)
    conv_clamp: float | None = 256  # clamp the convolution output to +-X, None = no clamping
    magnitude_ema_beta: float = 0.999  # decay of the input magnitude EMA

    def spec(self) -> LayerSpec:
        """What the layer derives from these arguments (rates, factors, taps, padding)."""
        return layer_spec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                             if f.name not in ("conv_clamp", "magnitude_ema_beta")})

    def hyperparameters(self) -> stylegan3.SynthesisConfig:
        """The layer settings `stylegan3.SynthesisLayer` reads from a synthesis config."""
        return stylegan3.SynthesisConfig(conv_kernel=self.conv_kernel, filter_size=self.filter_size, lrelu_upsampling=self.lrelu_upsampling,
                                         use_radial_filters=self.use_radial_filters, conv_clamp=self.conv_clamp,
                                         magnitude_ema_beta=self.magnitude_ema_beta)


@dataclass
class MappingConfig(JsonConfig):
    num_layers: int = 2  # FC layers after the concatenation of z and the class embedding
    lr_multiplier: float = 0.01  # learning rate multiplier of the FC layers
    w_avg_beta: float = 0.998  # decay of the W average (one per class in a conditional network)
    embed_classes: int = 1000  # rows of the class embedding (the official one has ImageNet's 1000)
    embed_features: int = 320  # columns of the class embedding
    class_embed: ClassEmbed = "imagenet"  # initial embedding of a new network: the shipped ImageNet one, or "random"


@dataclass
class SynthesisConfig(JsonConfig):
    layers: list[LayerConfig] = field(default_factory=list)  # the synthesis layers in order, ToRGB last
    output_scale: float = 0.25  # scale factor of the output image


@dataclass
class GrowthStage(JsonConfig):
    up_factor: int = 2  # resolution multiplier of the stage
    head_layers: int = 7  # new layers before ToRGB


@dataclass
class StageHistory(JsonConfig):
    """How the layers came about: the stem's synthesis settings and the growth stages after it."""

    stem_resolution: int = 16  # output resolution of the stem
    stem: stylegan3.SynthesisConfig = field(default_factory=lambda: stylegan3.SynthesisConfig(num_layers=10))  # the stem's settings
    stages: list[GrowthStage] = field(default_factory=list)  # super-resolution stages, in order


@dataclass
class GeneratorConfig(GeneratorConfigBase):
    """An XL generator: the explicit layer list (with official names) and, where known, the stage history
    it is recomputed from (a mismatch is refused)."""

    describe = "StyleGAN-XL generator config"
    z_dim: int = 64  # input latent (Z) dimensionality
    img_resolution: int = 16  # output resolution
    mapping: MappingConfig = field(default_factory=MappingConfig)  # the class-embedding mapping network
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)  # the layers
    history: StageHistory | None = None  # the stem and growth stages the layers come from; None = unknown


# ----------------------------------------------------------------------------- layer schedule and growth


def stem_layers(img_resolution: int, img_channels: int, stem: stylegan3.SynthesisConfig) -> list[LayerConfig]:
    """The stem's layers: StyleGAN3's schedule (§3.2 of the StyleGAN3 paper), names L0 ... L{num_layers}."""
    return [
        LayerConfig(
            name=s.name, is_torgb=s.is_torgb, is_critically_sampled=s.is_critically_sampled, use_fp16=s.use_fp16,
            in_channels=s.in_channels, out_channels=s.out_channels, in_size=s.in_size, out_size=s.out_size,
            in_sampling_rate=s.in_sampling_rate, out_sampling_rate=s.out_sampling_rate, in_cutoff=s.in_cutoff,
            out_cutoff=s.out_cutoff, in_half_width=s.in_half_width, out_half_width=s.out_half_width,
            conv_kernel=stem.conv_kernel, filter_size=stem.filter_size, lrelu_upsampling=stem.lrelu_upsampling,
            use_radial_filters=stem.use_radial_filters, conv_clamp=stem.conv_clamp, magnitude_ema_beta=stem.magnitude_ema_beta,
        )
        for s in synthesis_schedule(img_resolution, img_channels, stem)
    ]


def drop_critical(layers: list[LayerConfig]) -> list[LayerConfig]:
    """The layers a growth stage keeps: all but the trailing critically sampled ones (which include ToRGB)."""
    kept = list(layers)
    while kept and kept[-1].is_critically_sampled:
        kept.pop()
    if not kept:
        raise ValueError("every layer is critically sampled: nothing to grow from")
    return kept


def superres_head(last: LayerConfig, first_index: int, img_resolution: int, head_layers: int, stem: stylegan3.SynthesisConfig,
                  img_channels: int) -> list[LayerConfig]:
    """The head layers a super-resolution stage appends after the last kept layer `last` (the official
    `SuperresGenerator`): cutoffs and stopbands progress geometrically from `last`'s output to the new resolution
    (exponents with num_critical = 2), the first head layer keeps `last`'s rate and channels (an identity
    specification), names count on from `first_index`, and only conv_kernel / radial filters come from the stem."""
    if head_layers <= HEAD_NUM_CRITICAL:
        raise ValueError(f"head_layers must exceed {HEAD_NUM_CRITICAL}, got {head_layers}")
    first_cutoff = last.out_cutoff
    first_stopband = last.out_half_width + first_cutoff
    last_cutoff = img_resolution / 2  # f_{c,N}
    last_stopband = last_cutoff * stem.last_stopband_rel  # f_{t,N}
    exponents = np.minimum(np.arange(head_layers + 1) / (head_layers - HEAD_NUM_CRITICAL), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents  # f_c[i]
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents  # f_t[i]
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))  # s[i]
    sampling_rates[0] = last.out_sampling_rate
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs  # f_h[i]
    sizes = sampling_rates + stem.margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((stem.channel_base / 2) / cutoffs, stem.channel_max))
    channels[0] = last.out_channels
    channels[-1] = img_channels
    layers = []
    for idx in range(head_layers + 1):
        prev = max(idx - 1, 0)
        layers.append(LayerConfig(
            name=f"L{idx + first_index}_{int(sizes[idx])}_{int(channels[idx])}", is_torgb=idx == head_layers,
            is_critically_sampled=idx >= head_layers - stem.num_critical,
            use_fp16=bool(sampling_rates[idx] * 2**stem.num_fp16_res > img_resolution),
            in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=stem.conv_kernel, use_radial_filters=stem.use_radial_filters,
        ))
    return layers


def grow(layers: list[LayerConfig], img_resolution: int, stage: GrowthStage, stem: stylegan3.SynthesisConfig,
         img_channels: int) -> tuple[list[LayerConfig], int]:
    """One super-resolution stage: (layers, resolution) -> (kept layers + head, resolution * up_factor). The head's
    names count on from len(kept) + 1, so the dropped layers' numbers are skipped (no L8 after growing a 10-layer stem)."""
    if stage.up_factor not in UP_FACTORS:
        raise ValueError(f"up_factor must be one of {UP_FACTORS}, got {stage.up_factor}")
    kept = drop_critical(layers)
    new_resolution = img_resolution * stage.up_factor
    return kept + superres_head(kept[-1], len(kept) + 1, new_resolution, stage.head_layers, stem, img_channels), new_resolution


def history_layers(history: StageHistory, img_channels: int) -> tuple[list[LayerConfig], int]:
    """The layers and resolution a stage history produces: the stem, then each growth stage."""
    layers = stem_layers(history.stem_resolution, img_channels, history.stem)
    resolution = history.stem_resolution
    for stage in history.stages:
        layers, resolution = grow(layers, resolution, stage, history.stem, img_channels)
    return layers, resolution


def _describe_history(history: StageHistory) -> str:
    stages = ", ".join(f"x{s.up_factor} with {s.head_layers} head layers" for s in history.stages) or "no growth"
    return f"stem {history.stem_resolution}² with {history.stem.num_layers} layers, then {stages}"


def check_config(cfg: GeneratorConfig) -> None:
    """Refuse configs that cannot describe a working XL generator, with a message naming the problem."""
    m = cfg.mapping
    if cfg.c_dim > m.embed_classes:
        raise ValueError(f"c_dim={cfg.c_dim} exceeds the {m.embed_classes} rows of the class embedding; more than 1000 classes "
                         "need a random class embedding with a row per class (--class-embed random)")
    if m.class_embed == "imagenet" and (m.embed_classes, m.embed_features) != (1000, 320):
        raise ValueError(f"the ImageNet class embedding is 1000 x 320, not {m.embed_classes} x {m.embed_features}")
    layers = cfg.synthesis.layers
    if not layers:
        raise ValueError("the config lists no synthesis layers")
    names = [lc.name for lc in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names repeat: {names}")
    if [lc.is_torgb for lc in layers] != [False] * (len(layers) - 1) + [True]:
        raise ValueError("exactly the last layer must be the ToRGB layer")
    for a, b in zip(layers, layers[1:]):
        if (a.out_channels, a.out_size) != (b.in_channels, b.in_size):
            raise ValueError(f"layer {b.name} takes {b.in_channels} channels of {b.in_size}² but {a.name} gives "
                             f"{a.out_channels} of {a.out_size}²")
    if (layers[-1].out_size, layers[-1].out_channels) != (cfg.img_resolution, cfg.img_channels):
        raise ValueError(f"the last layer gives {layers[-1].out_channels} channels of {layers[-1].out_size}², not "
                         f"img_channels={cfg.img_channels} at img_resolution={cfg.img_resolution}")
    if cfg.history is not None:
        _check_history(cfg, cfg.history)


def _check_history(cfg: GeneratorConfig, history: StageHistory) -> None:
    expected, resolution = history_layers(history, cfg.img_channels)
    where = f"the config's layers disagree with its stage history ({_describe_history(history)})"
    layers = cfg.synthesis.layers
    if resolution != cfg.img_resolution:
        raise ValueError(f"{where}: the history gives {resolution}², the config says {cfg.img_resolution}²")
    if len(expected) != len(layers):
        raise ValueError(f"{where}: {len(layers)} layers listed, the history gives {len(expected)}")
    for have, want in zip(layers, expected):
        for f in dataclasses.fields(LayerConfig):
            a, b = getattr(have, f.name), getattr(want, f.name)
            if a != b:
                raise ValueError(f"{where}: layer {have.name}: {f.name} is {a!r}, the history gives {b!r}")


def xl_config(img_resolution: int, c_dim: int = 0, img_channels: int = 3, z_dim: int = 64, w_dim: int = 512,
              stem_resolution: int = 16, stem: stylegan3.SynthesisConfig | None = None, head_layers: int = 7,
              final_head_layers: int | None = None, class_embed: ClassEmbed = "imagenet") -> GeneratorConfig:
    """A new XL generator grown by x2 stages from `stem_resolution` to `img_resolution`, with train.py's settings
    for StyleGAN-XL (z 64, w 512, 2 mapping layers, twice StyleGAN3-T's channels, 10 stem layers as the README's
    stem command). `final_head_layers` sets the last stage's head (the paper uses 5 at 1024²)."""
    factor = img_resolution // stem_resolution
    if img_resolution < stem_resolution or img_resolution % stem_resolution or factor & (factor - 1):
        raise ValueError(f"img_resolution {img_resolution} must be the stem resolution {stem_resolution} times a power of two")
    if class_embed == "imagenet" and c_dim > 1000:
        raise ValueError(f"c_dim={c_dim}: the ImageNet class embedding has 1000 rows; more classes need class_embed='random' (--class-embed random)")
    stem = stem or stylegan3.SynthesisConfig(num_layers=10, channel_base=65536, channel_max=1024)
    num_stages = int(np.log2(img_resolution // stem_resolution))
    stages = [GrowthStage(2, head_layers) for _ in range(num_stages)]
    if stages and final_head_layers is not None:
        stages[-1].head_layers = final_head_layers
    history = StageHistory(stem_resolution=stem_resolution, stem=stem, stages=stages)
    layers, _ = history_layers(history, img_channels)
    mapping = MappingConfig(embed_classes=max(1000, c_dim), class_embed=class_embed)
    return GeneratorConfig(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                           mapping=mapping, synthesis=SynthesisConfig(layers=layers), history=history)


# ----------------------------------------------------------------------------- class embedding


@functools.lru_cache(maxsize=1)
def _imagenet_class_embedding() -> torch.Tensor:
    from safetensors.torch import load

    data = (resources.files("stylegan.models") / "builtin" / "xl_class_embedding" / "tf_efficientnet_lite0.safetensors").read_bytes()
    return load(data)["weight"]


def imagenet_class_embedding() -> torch.Tensor:
    """The official 1000 x 320 ImageNet class embedding (autonomousvision/stylegan-xl `in_embeddings/tf_efficientnet_lite0.pkl`,
    MIT; provenance in `builtin/xl_class_embedding/README.md`), a fresh float32 copy."""
    return _imagenet_class_embedding().clone()


# ----------------------------------------------------------------------------- networks


class MappingNetwork(MappingNetworkBase):
    """z, c -> w: normalised z concatenated with the normalised projection of the class embedding of argmax(c),
    2 FC layers, class-wise W average and truncation."""

    num_ws: int
    w_avg_beta: float

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, cfg: MappingConfig) -> None:
        super().__init__(z_dim, c_dim, w_dim, num_ws, cfg.num_layers, cfg.w_avg_beta)
        self.embed = torch.nn.Embedding(cfg.embed_classes, cfg.embed_features)  # present even without labels, as the official
        if cfg.class_embed == "imagenet":
            with torch.no_grad():
                self.embed.weight.copy_(imagenet_class_embedding())
        self.embed_proj = FullyConnectedLayer(cfg.embed_features, z_dim, activation="lrelu") if c_dim > 0 else None
        features = [z_dim + (z_dim if c_dim > 0 else 0)] + [w_dim] * cfg.num_layers
        for idx in range(cfg.num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu", lr_multiplier=cfg.lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([c_dim, w_dim] if c_dim > 0 else [w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        x = normalize_2nd_moment(assert_shape(z, [None, self.z_dim], "z").to(torch.float32))
        labels = None
        if self.embed_proj is not None:
            labels = check_labels(c, self.c_dim).argmax(1)  # labels enter only through argmax: an all-zero row is class 0
            x = torch.cat([x, normalize_2nd_moment(self.embed_proj(self.embed(labels)))], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            if labels is None:
                update_w_avg(self.w_avg, x, self.w_avg_beta)
            else:
                for i, label in enumerate(labels):  # one sample at a time, so a class seen twice moves twice
                    update_w_avg(self.w_avg[label], x[i : i + 1], self.w_avg_beta)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:  # class-wise truncation towards w_avg[argmax c] (XL §3.1)
            x = truncate(x, self.w_avg if labels is None else self.w_avg[labels], truncation_psi, truncation_cutoff)
        return x


class SynthesisNetwork(stylegan3.SynthesisBase):
    """ws [N, num_ws, w_dim] -> image: StyleGAN3's Fourier features and layers, built from an explicit layer list
    (each layer with its own settings); num_layers counts them all, ToRGB included."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        super().__init__(w_dim, img_resolution, img_channels, cfg.output_scale, [(lc.spec(), lc.hyperparameters()) for lc in cfg.layers])
        self.num_layers = len(cfg.layers)


class Generator(MappingSynthesisGenerator):
    """StyleGAN-XL generator: G(z, c) = synthesis(mapping(z, c)), official attribute and tensor names."""

    synthesis_class = SynthesisNetwork
    mapping_class = MappingNetwork
    config: GeneratorConfig

    def __init__(self, cfg: GeneratorConfig) -> None:
        check_config(cfg)
        super().__init__(cfg)

    @property
    def head_layer_names(self) -> list[str]:
        """The layers the last growth stage added (the official `SuperresGenerator.head_layer_names`); [] for a stem."""
        return head_layer_names(self.config)


def head_layer_names(cfg: GeneratorConfig) -> list[str]:
    """Names of the layers of `cfg` that its last growth stage added, from its stage history ([] for a stem or an
    unknown history)."""
    if cfg.history is None or not cfg.history.stages:
        return []
    before, _ = history_layers(dataclasses.replace(cfg.history, stages=cfg.history.stages[:-1]), cfg.img_channels)
    kept = {lc.name for lc in drop_critical(before)}
    return [lc.name for lc in cfg.synthesis.layers if lc.name not in kept]


def grow_generator(G: Generator, stage: GrowthStage) -> Generator:
    """A super-resolution stage on `G` (the official `SuperresGenerator`): the kept layers, the Fourier features and
    the mapping network (with its W averages) carry over, the head layers are new."""
    cfg = G.config
    if cfg.history is None:
        raise ValueError("this generator's stage history is unknown; growth needs the stem's settings")
    layers, resolution = grow(cfg.synthesis.layers, cfg.img_resolution, stage, cfg.history.stem, cfg.img_channels)
    history = dataclasses.replace(cfg.history, stages=[*cfg.history.stages, dataclasses.replace(stage)])
    new_cfg = dataclasses.replace(cfg, img_resolution=resolution, synthesis=dataclasses.replace(cfg.synthesis, layers=layers),
                                  history=history, mapping=dataclasses.replace(cfg.mapping))
    grown = Generator(new_cfg).to(next(G.parameters()).device)
    kept = {lc.name for lc in drop_critical(cfg.synthesis.layers)}
    with torch.no_grad():
        own = grown.state_dict()
        for key, value in G.state_dict().items():
            if key.startswith("mapping.") or key.startswith("synthesis.input.") or key.split(".")[1] in kept:
                own[key].copy_(value)
    return grown

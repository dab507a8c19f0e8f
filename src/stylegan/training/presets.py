"""Presets as data: one typed row per `--cfg` (its networks, loss, optimiser and schedule, with NVIDIA's values),
the builders that turn a row's networks into configs, and the named network presets of `stylegan init`.

The rows: StyleGAN2-ADA's configuration table (`auto` ... `cifar`, stylegan2-ada-pytorch train.py `cfg_specs`),
NVlabs/stylegan3 train.py (`stylegan3-t`, `stylegan3-r`), the 2-core CPU `demo`, and the StyleGAN2 paper's Table 1
(`paper-a` ... `paper-f`, NVlabs/stylegan2 run_training.py `--config-id config-a ... config-f`), StyleGAN-XL's stem
(`stylegan-xl`, autonomousvision/stylegan-xl train.py with `--cfg stylegan3-t --syn_layers 10`) and its 2-core CPU
demo (`xl-demo`). A new family's
preset is one more row naming its G and D family, its loss and its constants, plus a builder per new family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..models import projected_discriminator, stylegan1, stylegan2, stylegan3, stylegan_xl
from ..models.common import GeneratorConfigBase
from ..models.config import JsonConfig
from ..models.registry import NetworkSpec
from .growing import GrowingConfig

AugMode = Literal["ada", "noaug", "fixed"]
LossKind = Literal["stylegan2", "projected"]  # StyleGAN2's (training.loss) or StyleGAN-XL's projected GAN loss (training.loss_xl)


@dataclass(frozen=True)
class Net:
    """A network of a preset: its registered family and the family's variant."""

    family: str  # models.registry family
    arch: str  # StyleGAN2: 'orig', 'skip', 'resnet'; StyleGAN3: 't', 'r'; StyleGAN (2019): 'adain', 'demod' (G), 'basic', 'revised' (D);
    # StyleGAN-XL: 't<N>' (G: a StyleGAN3-T stem of N layers), a key of XL_DISCRIMINATORS (D)


@dataclass(frozen=True)
class PerBatch:
    """A length that NVIDIA's code scales with the minibatch: `kimg_at_32` kimg at a minibatch of 32."""

    kimg_at_32: float

    def at(self, batch: int) -> float:
        return batch * self.kimg_at_32 / 32


@dataclass(frozen=True)
class Preset:
    """One `--cfg`. None marks what `derive` (from the resolution and GPU count) or the resolved batch decides."""

    name: str  # the --cfg value
    summary: str  # one line for `stylegan train --help`
    G: Net = Net("stylegan2", "skip")  # generator
    D: Net = Net("stylegan2", "resnet")  # discriminator
    loss: LossKind = "stylegan2"  # StyleGAN2's: non-saturating logistic loss, R1, path length (StyleGAN2 §3, appendix B)
    z_dim: int = 512  # latent dimensionality (z, and w unless w_dim)
    w_dim: int | None = None  # W dimensionality, None = z_dim
    map_depth: int = 8  # mapping layers
    channel_base: int | None = 32768  # channels min(channel_base / res, channel_max); None = from derive
    channel_max: int = 512  # maximum channels per layer
    fp16: bool = True  # mixed precision on CUDA (fp16 in the 4 highest resolutions, clamp 256); False = float32 throughout
    mbstd: int | None = 4  # minibatch-std group size
    batch: int | None = 32  # total minibatch
    ref_gpus: int | None = None  # GPU count of a stylegan2-ada table row: per-GPU batch batch // ref_gpus; None = batch // --gpus
    kimg: float = 25000  # training length
    glr: float | None = 0.002  # G learning rate
    dlr: float | None = 0.002  # D learning rate
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    gamma: float | None = 10  # R1 weight; None = 0.0002 res^2 / batch (StyleGAN2-ADA's heuristic) at the resolved batch
    ema_kimg: float | PerBatch | None = 10  # G_ema half-life in kimg
    ema_rampup: float | None = 0.05  # G_ema ramp-up, None = none
    G_reg_interval: int | None = 4  # lazy path-length regularisation interval, None = every minibatch
    D_reg_interval: int | None = 16  # lazy R1 interval, None = every minibatch
    style_mixing_prob: float = 0.9  # style mixing regularisation
    pl_weight: float = 2.0  # path-length regularisation weight
    blur_init_sigma: float = 0.0  # initial D input blur (StyleGAN3 §D)
    blur_fade_kimg: float | PerBatch = 0.0  # kimg over which the blur fades out
    growing: GrowingConfig | None = None  # progressive growing
    aug: AugMode = "ada"  # default --aug
    tick: float = 4  # default --tick
    snap: int = 50  # default --snap
    workers: int = 3  # default --workers
    stem_res: int | None = None  # StyleGAN-XL: resolution of the stem, at which a builtin: dataset is converted
    random_backbone: bool = False  # StyleGAN-XL: without feature-network weights, train on random ones (the demo) instead of stopping
    head_layers: int = 7  # StyleGAN-XL: default new layers per growth stage (--head-layers)
    derive: Callable[[Preset, int, int], Preset] | None = None  # (row, resolution, GPUs) -> the row with its None values filled


def _auto(row: Preset, res: int, gpus: int) -> Preset:
    """StyleGAN2-ADA's `auto` heuristics: batch, minibatch-std group, channels, learning rate, gamma and G_ema from
    the resolution and GPU count."""
    mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
    lrate = 0.002 if res >= 1024 else 0.0025
    return dataclasses.replace(row, ref_gpus=gpus, batch=mb, mbstd=min(mb // gpus, 4), channel_base=32768 if res >= 512 else 16384,
                               glr=lrate, dlr=lrate, gamma=0.0002 * res**2 / mb, ema_kimg=mb * 10 / 32, derive=None)


def _paper(name: str, summary: str, large: bool = False, lazy_r1: bool = True, path_length: bool = True, growing: str | None = None) -> Preset:
    """A row of the StyleGAN2 paper's Table 1 (float32, as its TF code trained): `growing` = the StyleGAN (2019)
    generator style of configs A-D, which grow progressively."""
    return Preset(
        name, summary, fp16=False, channel_base=32768 if large else 16384, aug="noaug", ema_kimg=10.0, ema_rampup=None,
        G=Net("stylegan1", growing) if growing else Net("stylegan2", "skip"),
        D=Net("stylegan1", "basic" if growing == "adain" else "revised") if growing else Net("stylegan2", "resnet"),
        D_reg_interval=16 if lazy_r1 else None, G_reg_interval=4 if path_length else None, pl_weight=2.0 if path_length else 0.0,
        glr=0.001 if growing else 0.002, dlr=0.001 if growing else 0.002,
        growing=GrowingConfig(start_res=8, training_kimg=600.0, transition_kimg=600.0, batch={8: 256, 16: 128, 32: 64, 64: 32},
                              glr={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
                              dlr={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}) if growing else None,
    )


def _stylegan3(name: str, summary: str, arch: str, **changes: object) -> Preset:
    return Preset(name, summary, G=Net("stylegan3", arch), map_depth=2, glr=0.0025, gamma=None, ema_kimg=PerBatch(10), G_reg_interval=None,
                  style_mixing_prob=0.0, pl_weight=0.0, **changes)  # type: ignore[arg-type]


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("auto", "StyleGAN2-ADA's choices for the resolution and GPU count (the default)", map_depth=2, channel_base=None, mbstd=None,
           batch=None, glr=None, dlr=None, gamma=None, ema_kimg=None, derive=_auto),
    Preset("stylegan2", "StyleGAN2 config F", ref_gpus=8, ema_rampup=None),
    Preset("paper256", "StyleGAN2-ADA paper, 256x256", batch=64, ref_gpus=8, mbstd=8, channel_base=16384, glr=0.0025, dlr=0.0025,
           gamma=1, ema_kimg=20, ema_rampup=None),
    Preset("paper512", "StyleGAN2-ADA paper, 512x512", batch=64, ref_gpus=8, mbstd=8, glr=0.0025, dlr=0.0025, gamma=0.5, ema_kimg=20,
           ema_rampup=None),
    Preset("paper1024", "StyleGAN2-ADA paper, 1024x1024", ref_gpus=8, gamma=2, ema_rampup=None),
    Preset("cifar", "StyleGAN2-ADA paper, CIFAR-10", D=Net("stylegan2", "orig"), map_depth=2, batch=64, ref_gpus=2, mbstd=32, kimg=100000,
           glr=0.0025, dlr=0.0025, gamma=0.01, ema_kimg=500, G_reg_interval=None, style_mixing_prob=0.0, pl_weight=0.0),
    _stylegan3("stylegan3-t", "StyleGAN3-T: translation equivariant", "t"),
    _stylegan3("stylegan3-r", "StyleGAN3-R: translation and rotation equivariant", "r", blur_init_sigma=10.0, blur_fade_kimg=PerBatch(200)),
    Preset("demo", "a 2-core CPU: small networks, 32x32, no augmentation", z_dim=64, map_depth=2, channel_base=2048, channel_max=64,
           kimg=40, glr=0.005, dlr=0.005, gamma=0.05, ema_kimg=2.0, aug="noaug", tick=1, snap=5, workers=1),  # lr 0.005: clean shapes by 10 kimg
    Preset("stylegan-xl", "StyleGAN-XL stem (then stage by stage with --grow-from): projected GAN on DeiT-B + EfficientNet-Lite0",
           G=Net("stylegan_xl", "t10"), D=Net("stylegan_xl", "deit-lite0"), loss="projected", z_dim=64, w_dim=512, map_depth=2,
           channel_base=65536, channel_max=1024, mbstd=None, batch=64, kimg=10000, glr=0.0025, dlr=0.002, gamma=0.0,
           ema_kimg=PerBatch(10), style_mixing_prob=0.0, pl_weight=2.0, blur_init_sigma=2.0, blur_fade_kimg=300.0, aug="noaug",
           snap=10, stem_res=16),
    Preset("xl-demo", "StyleGAN-XL on a 2-core CPU: tiny networks, a 16x16 stem, EfficientNet-Lite0 at 128x128 features",
           G=Net("stylegan_xl", "t4"), D=Net("stylegan_xl", "lite0-demo"), loss="projected", z_dim=64, w_dim=128, map_depth=2,
           channel_base=512, channel_max=64, fp16=False, mbstd=None, batch=8, kimg=1, glr=0.0025, dlr=0.002, gamma=0.0,
           ema_kimg=0.5, style_mixing_prob=0.0, pl_weight=2.0, aug="noaug", tick=0.1, snap=5, workers=1, stem_res=16,
           random_backbone=True, head_layers=3),  # no D blur: the official loss blurs only for fades > 1 kimg; 1 kimg per stage
    _paper("paper-a", "StyleGAN (2019): AdaIN, progressive growing, R1 every minibatch", lazy_r1=False, path_length=False, growing="adain"),
    _paper("paper-b", "A + weight demodulation (revised normalisation, noise and bias outside the style block)", lazy_r1=False,
           path_length=False, growing="demod"),
    _paper("paper-c", "B + lazy regularisation (R1 every 16 minibatches)", path_length=False, growing="demod"),
    _paper("paper-d", "C + path length regularisation", growing="demod"),
    _paper("paper-e", "D + no growing: skip G, residual D"),
    _paper("paper-f", "E + large networks (twice the channels)", large=True),
)}
CONFIGS = tuple(PRESETS)
PAPER_CONFIGS = tuple(name for name in PRESETS if name.startswith("paper-"))


def preset(name: str, res: int, gpus: int) -> Preset:
    """Row `name`, with what it derives from the resolution and GPU count filled in."""
    row = PRESETS[name]
    return row.derive(row, res, gpus) if row.derive is not None else row


# ----------------------------------------------------------------------------- networks of a preset


@dataclass(frozen=True)
class NetworkArgs:
    """A preset's network settings resolved against the dataset and the flags."""

    resolution: int  # of the dataset
    channels: int  # image channels of the dataset
    c_dim: int  # label dimension (0 = unconditional)
    z_dim: int
    w_dim: int
    channel_base: int
    channel_max: int
    map_depth: int
    mbstd: int | None
    fp16_res: int  # num_fp16_res
    conv_clamp: float | None
    freezed: int  # frozen D layers
    batch: int  # total minibatch (StyleGAN3's magnitude EMA follows it)


def _stylegan2_g(arch: str, a: NetworkArgs) -> JsonConfig:
    return stylegan2.GeneratorConfig(
        z_dim=a.z_dim, c_dim=a.c_dim, w_dim=a.w_dim, img_resolution=a.resolution, img_channels=a.channels,
        mapping=stylegan2.MappingConfig(num_layers=a.map_depth),
        synthesis=stylegan2.SynthesisConfig(channel_base=a.channel_base, channel_max=a.channel_max, num_fp16_res=a.fp16_res,
                                            conv_clamp=a.conv_clamp, architecture=arch, fused_modconv_default="inference_only"))  # type: ignore[arg-type]


def _stylegan3_g(arch: str, a: NetworkArgs) -> JsonConfig:
    g = stylegan3.stylegan3_config(f"stylegan3-{arch}", a.resolution, z_dim=a.z_dim, w_dim=a.w_dim, c_dim=a.c_dim, img_channels=a.channels,
                                   channel_base=a.channel_base, channel_max=a.channel_max)
    g.mapping.num_layers = a.map_depth
    g.synthesis.num_fp16_res, g.synthesis.conv_clamp = a.fp16_res, a.conv_clamp
    g.synthesis.magnitude_ema_beta = 0.5 ** (a.batch / (20 * 1e3))
    return g


def _stylegan1_g(arch: str, a: NetworkArgs) -> JsonConfig:
    """TF StyleGAN counts channels in fmap_base units, half our channel_base."""
    return stylegan1.GeneratorConfig(
        z_dim=a.z_dim, c_dim=a.c_dim, w_dim=a.w_dim, img_resolution=a.resolution, img_channels=a.channels,
        mapping=stylegan1.MappingConfig(num_layers=a.map_depth),
        synthesis=stylegan1.SynthesisConfig(style=arch, channel_base=a.channel_base // 2, channel_max=a.channel_max))  # type: ignore[arg-type]


def _stylegan2_d(arch: str, a: NetworkArgs) -> JsonConfig:
    return stylegan2.DiscriminatorConfig(c_dim=a.c_dim, img_resolution=a.resolution, img_channels=a.channels, architecture=arch,  # type: ignore[arg-type]
                                         channel_base=a.channel_base, channel_max=a.channel_max, num_fp16_res=a.fp16_res,
                                         conv_clamp=a.conv_clamp, mbstd_group_size=a.mbstd, freeze_layers=a.freezed)


def _stylegan1_d(arch: str, a: NetworkArgs) -> JsonConfig:
    """Float32 throughout and no frozen layers; channels in TF fmap_base units as for G."""
    return stylegan1.DiscriminatorConfig(c_dim=a.c_dim, img_resolution=a.resolution, img_channels=a.channels, style=arch,  # type: ignore[arg-type]
                                         channel_base=a.channel_base // 2, channel_max=a.channel_max, mbstd_group_size=a.mbstd)  # type: ignore[arg-type]


def _xl_g(arch: str, a: NetworkArgs) -> JsonConfig:
    """A StyleGAN-XL stem at the dataset's resolution: `arch` 't<N>' = N StyleGAN3-T layers (train.py `--syn_layers N`), the
    ImageNet class embedding (a random one beyond 1000 classes), magnitude EMA from the batch as StyleGAN3."""
    stem = stylegan3.SynthesisConfig(num_layers=int(arch.removeprefix("t")), channel_base=a.channel_base, channel_max=a.channel_max,
                                     num_fp16_res=a.fp16_res, conv_clamp=a.conv_clamp, magnitude_ema_beta=0.5 ** (a.batch / (20 * 1e3)))
    g = stylegan_xl.xl_config(a.resolution, c_dim=a.c_dim, img_channels=a.channels, z_dim=a.z_dim, w_dim=a.w_dim,
                              stem_resolution=a.resolution, stem=stem, class_embed="imagenet" if a.c_dim <= 1000 else "random")
    g.mapping.num_layers = a.map_depth
    return g


XL_DISCRIMINATORS = {  # arch -> (feature networks, feature resolution, channels-last CPU fast path)
    "deit-lite0": (["deit_base_distilled_patch16_224", "tf_efficientnet_lite0"], projected_discriminator.FEATURE_RES, False),  # train.py
    "lite0": (["tf_efficientnet_lite0"], projected_discriminator.FEATURE_RES, False),
    "lite0-demo": (["tf_efficientnet_lite0"], 128, True),  # the CPU demo: one network, the smallest feature resolution
}


def _xl_d(arch: str, a: NetworkArgs) -> JsonConfig:
    """train.py's ProjectedDiscriminator (cout 64, expand, CCM + CSM, 4 mini-discriminators) with the arch's networks."""
    backbones, feature_res, channels_last = XL_DISCRIMINATORS[arch]
    return projected_discriminator.ProjectedDiscriminatorConfig(
        backbones=list(backbones), cond=a.c_dim > 0, rand_embedding=a.c_dim > projected_discriminator.CLASS_EMBED_SHAPE[0], c_dim=a.c_dim,
        img_resolution=a.resolution, img_channels=a.channels, feature_res=feature_res, channels_last=channels_last)


BUILDERS: dict[tuple[str, str], Callable[[str, NetworkArgs], JsonConfig]] = {
    ("stylegan2", "generator"): _stylegan2_g,
    ("stylegan3", "generator"): _stylegan3_g,
    ("stylegan1", "generator"): _stylegan1_g,
    ("stylegan2", "discriminator"): _stylegan2_d,
    ("stylegan1", "discriminator"): _stylegan1_d,
    ("stylegan_xl", "generator"): _xl_g,
    ("stylegan_xl", "discriminator"): _xl_d,
}


def network_specs(row: Preset, args: NetworkArgs) -> tuple[NetworkSpec, NetworkSpec]:
    """The G and D specs of a preset row."""
    return (NetworkSpec(row.G.family, "generator", BUILDERS[(row.G.family, "generator")](row.G.arch, args)),
            NetworkSpec(row.D.family, "discriminator", BUILDERS[(row.D.family, "discriminator")](row.D.arch, args)))


# ----------------------------------------------------------------------------- `stylegan init`


@dataclass(frozen=True)
class NetworkPreset:
    """A named architecture of `stylegan init`: a StyleGAN2 G and D (StyleGAN2's defaults besides these), or a
    StyleGAN-XL generator (no discriminator yet): a 10-layer stem grown by x2 stages of 7 head layers."""

    resolution: int  # image resolution (StyleGAN-XL: of the stem, grown to the resolution asked for)
    z_dim: int  # input latent (Z) dimensionality
    map_depth: int  # mapping layers
    channel_base: int  # channels min(channel_base / res, channel_max) (StyleGAN-XL: of the stem, as StyleGAN3's)
    channel_max: int  # maximum channels per layer
    family: str = "stylegan2"  # 'stylegan2' (G and D) or 'stylegan_xl' (G)
    w_dim: int | None = None  # intermediate latent (W) dimensionality, None = z_dim


NETWORK_PRESETS: dict[str, NetworkPreset] = {
    "sg2-32": NetworkPreset(32, 64, 2, 2048, 64),  # tiny: CPU demos and tests
    "sg2-64": NetworkPreset(64, 512, 2, 16384, 256),
    "sg2-256": NetworkPreset(256, 512, 8, 16384, 512),  # stylegan2-ada `paper256`
    "sg2-1024": NetworkPreset(1024, 512, 8, 32768, 512),  # StyleGAN2 paper config F
    "xl": NetworkPreset(16, 64, 2, 65536, 1024, "stylegan_xl", 512),  # StyleGAN-XL train.py: twice StyleGAN3-T's channels, 16² stem
    "xl-tiny": NetworkPreset(16, 64, 2, 1024, 96, "stylegan_xl", 128),  # tiny: CPU demos and tests (the XL parity networks' sizes)
}


def network_preset(name: str, img_channels: int = 3, c_dim: int = 0, resolution: int | None = None,
                   class_embed: stylegan_xl.ClassEmbed | None = None) -> tuple[GeneratorConfigBase, JsonConfig | None]:
    """Fresh G and D configs (D None for StyleGAN-XL) of network preset `name` with the given image channels and label
    dimension; StyleGAN-XL presets also take the resolution to grow to and the initial class embedding."""
    if name not in NETWORK_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(NETWORK_PRESETS)}")
    p = NETWORK_PRESETS[name]
    w_dim = p.z_dim if p.w_dim is None else p.w_dim
    if p.family == "stylegan_xl":
        stem = stylegan3.SynthesisConfig(num_layers=10, channel_base=p.channel_base, channel_max=p.channel_max)
        xl = stylegan_xl.xl_config(p.resolution if resolution is None else resolution, c_dim=c_dim, img_channels=img_channels,
                                   z_dim=p.z_dim, w_dim=w_dim, stem_resolution=p.resolution, stem=stem, class_embed=class_embed or "imagenet")
        xl.mapping.num_layers = p.map_depth
        return xl, None
    if resolution not in (None, p.resolution):
        raise ValueError(f"resolution {resolution}: a {p.resolution}x{p.resolution} StyleGAN2 preset; only the StyleGAN-XL presets grow to "
                         "another resolution")
    if class_embed is not None:
        raise ValueError(f"class_embed {class_embed!r}: a StyleGAN2 preset has no class embedding; only the StyleGAN-XL presets take one")
    g = stylegan2.GeneratorConfig(z_dim=p.z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=p.resolution, img_channels=img_channels,
                                  mapping=stylegan2.MappingConfig(num_layers=p.map_depth),
                                  synthesis=stylegan2.SynthesisConfig(channel_base=p.channel_base, channel_max=p.channel_max))
    d = stylegan2.DiscriminatorConfig(c_dim=c_dim, img_resolution=p.resolution, img_channels=img_channels, channel_base=p.channel_base,
                                      channel_max=p.channel_max)
    return g, d

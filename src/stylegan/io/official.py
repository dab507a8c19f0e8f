"""Translate NVlabs constructor arguments (`init_kwargs`) to our configs.

Tensor names need no table here: our modules carry the official names (`mapping.fc0.weight`,
`synthesis.b64.conv1.affine.bias`, `b4.out.weight`, ...), so official state dicts load as they are.
The two official code bases differ only in constructor layout and defaults, listed in FLAVORS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..models import stylegan3
from ..models.stylegan2 import DiscriminatorConfig, GeneratorConfig, MappingConfig, SynthesisConfig


@dataclass(frozen=True)
class Flavor:
    """Constructor layout and defaults of one official code base."""

    name: str
    nested_synthesis_kwargs: bool  # ada: Generator(..., synthesis_kwargs={}); sg3: Generator(..., **synthesis_kwargs)
    g_num_fp16_res: int
    g_conv_clamp: float | None
    d_num_fp16_res: int
    d_conv_clamp: float | None
    w_avg_beta: float
    fp16_cuda_only: bool  # stylegan3 added the "fp32 off CUDA" rule; stylegan2-ada runs fp16 blocks in fp16 anywhere


FLAVORS = {
    "training.networks": Flavor("stylegan2-ada-pytorch", True, 0, None, 0, None, 0.995, False),
    "training.networks_stylegan2": Flavor("stylegan3", False, 4, 256, 4, 256, 0.998, True),
}

_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
_MAPPING_IGNORED = {"freeze_layers", "freeze_embed"}  # only decide trainability
_SYNTHESIS_KEYS = {
    "channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture", "resample_filter", "use_noise",
    "activation", "kernel_size", "fp16_channels_last", "fused_modconv_default",
}


def _flavor(module: str) -> Flavor:
    if module not in FLAVORS:
        raise ValueError(f"unsupported network module {module!r}; supported: {', '.join(FLAVORS)}")
    return FLAVORS[module]


def take_kwargs(kwargs: dict[str, Any], allowed: set[str], ignored: set[str], where: str) -> dict[str, Any]:
    """The `allowed` entries of official constructor arguments; ValueError naming `where` for any argument that is
    neither allowed nor `ignored` (one that only matters to training)."""
    unknown = sorted(set(kwargs) - allowed - ignored)
    if unknown:
        raise ValueError(f"{where}: unsupported argument(s) {', '.join(unknown)}")
    return {k: v for k, v in kwargs.items() if k in allowed}


def _mapping(kwargs: dict[str, Any], default_beta: float, where: str) -> MappingConfig:
    values = {"w_avg_beta": default_beta, **take_kwargs(dict(kwargs), _MAPPING_KEYS, _MAPPING_IGNORED, where)}
    return MappingConfig(**values)


def generator_config_from_official(init_kwargs: dict[str, Any], module: str) -> GeneratorConfig:
    """Official `Generator(**init_kwargs)` of `module` -> GeneratorConfig."""
    flavor = _flavor(module)
    kw = dict(init_kwargs)
    top = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k in kw}
    missing = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"} - set(top)
    if missing:
        raise ValueError(f"generator init_kwargs lack {', '.join(sorted(missing))}")
    mapping = _mapping(kw.pop("mapping_kwargs", {}) or {}, flavor.w_avg_beta, "generator mapping_kwargs")
    synth_kw = dict(kw.pop("synthesis_kwargs", {}) or {}) if flavor.nested_synthesis_kwargs else kw
    if flavor.nested_synthesis_kwargs and kw:
        raise ValueError(f"generator init_kwargs: unsupported argument(s) {', '.join(sorted(kw))}")
    synth_kw = take_kwargs(synth_kw, _SYNTHESIS_KEYS, set(), "generator synthesis arguments")
    synth_kw.setdefault("num_fp16_res", flavor.g_num_fp16_res)
    synth_kw.setdefault("conv_clamp", flavor.g_conv_clamp)
    synth_kw["fp16_cuda_only"] = flavor.fp16_cuda_only
    if "resample_filter" in synth_kw:
        synth_kw["resample_filter"] = list(synth_kw["resample_filter"])
    return GeneratorConfig(**top, mapping=mapping, synthesis=SynthesisConfig(**synth_kw))


_SG3_MAPPING_KEYS = {"num_layers", "lr_multiplier", "w_avg_beta"}
SG3_SYNTHESIS_KEYS = {f.name for f in dataclasses.fields(stylegan3.SynthesisConfig)}


def stylegan3_generator_config_from_official(init_kwargs: dict[str, Any]) -> stylegan3.GeneratorConfig:
    """stylegan3's `training.networks_stylegan3.Generator(**init_kwargs)` -> stylegan3.GeneratorConfig."""
    kw = dict(init_kwargs)
    top = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k in kw}
    missing = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"} - set(top)
    if missing:
        raise ValueError(f"generator init_kwargs lack {', '.join(sorted(missing))}")
    mapping_kw = take_kwargs(dict(kw.pop("mapping_kwargs", {}) or {}), _SG3_MAPPING_KEYS, _MAPPING_IGNORED, "generator mapping_kwargs")
    mapping = MappingConfig(**{"num_layers": 2, "w_avg_beta": 0.998, **mapping_kw})
    synthesis = stylegan3.SynthesisConfig(**take_kwargs(kw, SG3_SYNTHESIS_KEYS, set(), "generator synthesis arguments"))
    return stylegan3.GeneratorConfig(**top, mapping=mapping, synthesis=synthesis)


def discriminator_config_from_official(init_kwargs: dict[str, Any], module: str) -> DiscriminatorConfig:
    """Official `Discriminator(**init_kwargs)` of `module` -> DiscriminatorConfig."""
    flavor = _flavor(module)
    kw = dict(init_kwargs)
    block = take_kwargs(dict(kw.pop("block_kwargs", {}) or {}), {"activation", "resample_filter", "fp16_channels_last", "freeze_layers"}, set(),
                  "discriminator block_kwargs")
    epilogue = take_kwargs(dict(kw.pop("epilogue_kwargs", {}) or {}), {"mbstd_group_size", "mbstd_num_channels", "activation"}, set(),
                     "discriminator epilogue_kwargs")
    mapping = _mapping(kw.pop("mapping_kwargs", {}) or {}, flavor.w_avg_beta, "discriminator mapping_kwargs")
    top = take_kwargs(kw, {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max", "num_fp16_res", "conv_clamp",
                     "cmap_dim"}, set(), "discriminator init_kwargs")
    top.setdefault("num_fp16_res", flavor.d_num_fp16_res)
    top.setdefault("conv_clamp", flavor.d_conv_clamp)
    top["fp16_cuda_only"] = flavor.fp16_cuda_only
    act = block.pop("activation", "lrelu")
    if epilogue.pop("activation", act) != act:
        raise ValueError("discriminator: different block and epilogue activations are not supported")
    if "resample_filter" in block:
        block["resample_filter"] = list(block["resample_filter"])
    return DiscriminatorConfig(**top, **block, **epilogue, activation=act, mapping=mapping)

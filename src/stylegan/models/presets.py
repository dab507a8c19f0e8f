"""Named StyleGAN2 configurations (`stylegan init --preset NAME`)."""

from __future__ import annotations

from .stylegan2 import DiscriminatorConfig, GeneratorConfig, MappingConfig, SynthesisConfig


def _pair(res: int, zw: int, mapping_layers: int, channel_base: int, channel_max: int) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    g = GeneratorConfig(
        z_dim=zw, w_dim=zw, img_resolution=res,
        mapping=MappingConfig(num_layers=mapping_layers),
        synthesis=SynthesisConfig(channel_base=channel_base, channel_max=channel_max),
    )
    d = DiscriminatorConfig(img_resolution=res, channel_base=channel_base, channel_max=channel_max)
    return g, d


PRESETS: dict[str, tuple[GeneratorConfig, DiscriminatorConfig]] = {
    "sg2-32": _pair(32, 64, 2, 2048, 64),  # tiny: CPU demos and tests
    "sg2-64": _pair(64, 512, 2, 16384, 256),
    "sg2-256": _pair(256, 512, 8, 16384, 512),  # stylegan2-ada `paper256`
    "sg2-1024": _pair(1024, 512, 8, 32768, 512),  # StyleGAN2 paper config F
}


def preset(name: str, img_channels: int = 3, c_dim: int = 0) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """Fresh copies of preset `name` with the given image channels and label dimension."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    g, d = (GeneratorConfig.from_dict(PRESETS[name][0].to_dict()), DiscriminatorConfig.from_dict(PRESETS[name][1].to_dict()))
    g.img_channels = d.img_channels = img_channels
    g.c_dim = d.c_dim = c_dim
    return g, d

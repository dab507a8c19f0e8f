"""The registry of network families: networks are built from specs `{"family", "kind", "config"}` (the JSON that
checkpoints and training options store) and described by them.

A family registers, per kind, its config class, its network class and its tiny configs: the smallest networks
of each of its variants, which `tests/models/test_contract.py` runs through the contract every network keeps
(spec round trip, save and load, num_ws, truncation, label errors, float64-free forward and backward). So a new
family is tested by registering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from . import projected_discriminator, stylegan1, stylegan2, stylegan3, stylegan_xl
from .config import JsonConfig

Kind = Literal["generator", "discriminator"]


@dataclass(frozen=True)
class Registration:
    config: type[JsonConfig]  # the config class its networks are built from
    network: type[torch.nn.Module]  # the network class, constructed as network(config)
    tiny: Callable[[int], dict[str, JsonConfig]]  # c_dim -> {variant: the variant's smallest config}


NETWORKS: dict[tuple[str, str], Registration] = {}


def register(family: str, kind: Kind, config: type[JsonConfig], network: type[torch.nn.Module],
             tiny: Callable[[int], dict[str, JsonConfig]]) -> None:
    """Make `network(config)` buildable from specs of `family` / `kind`."""
    NETWORKS[(family, kind)] = Registration(config, network, tiny)


@dataclass
class NetworkSpec(JsonConfig):
    """What `build_network` builds a network from: its registered family and kind, and its config."""

    describe = "network spec"
    family: str  # registered family: 'stylegan1', 'stylegan2', 'stylegan3', 'stylegan_xl', ...
    kind: Kind  # 'generator' or 'discriminator'
    config: Any  # the family's config object of that kind

    @classmethod
    def of(cls, net: Any) -> NetworkSpec:
        """The spec from which `build_network` rebuilds `net`'s architecture."""
        for (family, kind), entry in NETWORKS.items():
            if type(net) is entry.network:
                return cls(family, kind, net.config)  # type: ignore[arg-type]
        raise TypeError(f"no spec for network class {type(net).__name__}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str | None = None) -> NetworkSpec:
        where = where or cls.describe
        if not isinstance(data, dict) or sorted(data) != ["config", "family", "kind"]:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{where}: expected an object with family, kind and config, got {got}")
        entry = _registration(data["family"], data["kind"])
        return cls(data["family"], data["kind"], entry.config.from_dict(data["config"], f"{where}.config"))

    def build(self) -> torch.nn.Module:
        """The network, weights freshly initialised."""
        return _registration(self.family, self.kind).network(self.config)  # type: ignore[call-arg]


def _registration(family: Any, kind: Any) -> Registration:
    if (family, kind) not in NETWORKS:
        known = ", ".join(f"{f}/{k}" for f, k in NETWORKS)
        raise ValueError(f"unknown network family/kind {family}/{kind}; known: {known}")
    return NETWORKS[(family, kind)]


def network_spec(net: Any) -> dict[str, Any]:
    """JSON-ready description from which `build_network` rebuilds `net`'s architecture."""
    return NetworkSpec.of(net).to_dict()


def build_network(spec: NetworkSpec | dict[str, Any]) -> torch.nn.Module:
    """Instantiate the network described by `spec` (a `NetworkSpec` or its JSON form; weights freshly initialised)."""
    return (spec if isinstance(spec, NetworkSpec) else NetworkSpec.from_dict(spec)).build()


# ----------------------------------------------------------------------------- the families


def _sg2_generator(c_dim: int, architecture: str) -> stylegan2.GeneratorConfig:
    return stylegan2.GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=32, mapping=stylegan2.MappingConfig(num_layers=2),
                                     synthesis=stylegan2.SynthesisConfig(channel_base=512, channel_max=32,
                                                                         architecture=architecture))  # type: ignore[arg-type]


def _sg3_generator(c_dim: int, config: str) -> stylegan3.GeneratorConfig:
    cfg = stylegan3.stylegan3_config(config, 16, z_dim=8, w_dim=8, c_dim=c_dim, channel_base=128, channel_max=8)
    cfg.synthesis.num_layers, cfg.synthesis.num_critical, cfg.synthesis.margin_size = 4, 1, 2
    return cfg


def _sg1_generator(c_dim: int, style: stylegan1.GStyle) -> stylegan1.GeneratorConfig:
    return stylegan1.GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=32, mapping=stylegan1.MappingConfig(num_layers=2),
                                     synthesis=stylegan1.SynthesisConfig(style=style, channel_base=256, channel_max=32))


def _xl_generator(c_dim: int, stages: list[int]) -> stylegan_xl.GeneratorConfig:
    """An 8² stem of 4 layers with a random 8 x 6 class embedding, grown by `stages`."""
    history = stylegan_xl.StageHistory(stem_resolution=8, stem=stylegan3.SynthesisConfig(channel_base=256, channel_max=16, num_layers=4),
                                       stages=[stylegan_xl.GrowthStage(f, 3) for f in stages])
    layers, res = stylegan_xl.history_layers(history, 3)
    return stylegan_xl.GeneratorConfig(z_dim=8, c_dim=c_dim, w_dim=16, img_resolution=res, history=history,
                                       mapping=stylegan_xl.MappingConfig(embed_classes=8, embed_features=6, class_embed="random"),
                                       synthesis=stylegan_xl.SynthesisConfig(layers=layers))


def _xl_discriminator(c_dim: int, variant: str) -> projected_discriminator.ProjectedDiscriminatorConfig:
    """EfficientNet-Lite0 alone at the smallest feature resolution (128²) on 16² images: with cross-scale mixing
    ("lite0") or cross-channel mixing only, two mini-discriminators, no channel expansion ("lite0-ccm")."""
    ccm = variant == "lite0-ccm"
    return projected_discriminator.ProjectedDiscriminatorConfig(
        backbones=["tf_efficientnet_lite0"], cond=c_dim > 0, c_dim=c_dim, img_resolution=16, feature_res=128,
        proj_type=1 if ccm else 2, num_discs=2 if ccm else 4, expand=not ccm)


register("stylegan2", "generator", stylegan2.GeneratorConfig, stylegan2.Generator,
         lambda c: {a: _sg2_generator(c, a) for a in stylegan2.ARCHITECTURES})
register("stylegan2", "discriminator", stylegan2.DiscriminatorConfig, stylegan2.Discriminator,
         lambda c: {a: stylegan2.DiscriminatorConfig(c_dim=c, img_resolution=32, channel_base=512, channel_max=32,
                                                     architecture=a)  # type: ignore[arg-type]
                    for a in stylegan2.ARCHITECTURES})
register("stylegan3", "generator", stylegan3.GeneratorConfig, stylegan3.Generator,
         lambda c: {t: _sg3_generator(c, t) for t in ("stylegan3-t", "stylegan3-r")})
register("stylegan1", "generator", stylegan1.GeneratorConfig, stylegan1.Generator,
         lambda c: {s: _sg1_generator(c, s) for s in ("adain", "demod")})
register("stylegan1", "discriminator", stylegan1.DiscriminatorConfig, stylegan1.Discriminator,
         lambda c: {s: stylegan1.DiscriminatorConfig(c_dim=c, img_resolution=32, style=s, channel_base=256, channel_max=32)
                    for s in ("basic", "revised")})
register("stylegan_xl", "generator", stylegan_xl.GeneratorConfig, stylegan_xl.Generator,
         lambda c: {"stem": _xl_generator(c, []), "x2": _xl_generator(c, [2])})
register("stylegan_xl", "discriminator", projected_discriminator.ProjectedDiscriminatorConfig, projected_discriminator.ProjectedDiscriminator,
         lambda c: {v: _xl_discriminator(c, v) for v in ("lite0", "lite0-ccm")})

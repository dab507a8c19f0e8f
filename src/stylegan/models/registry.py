"""Build networks from JSON specs `{"family", "kind", "config"}` and describe built networks as specs."""

from __future__ import annotations

from typing import Any

import torch

from . import projected_discriminator, stylegan1, stylegan2, stylegan3

# (family, kind) -> (config class, network class)
NETWORKS: dict[tuple[str, str], tuple[type, type[torch.nn.Module]]] = {
    ("stylegan2", "generator"): (stylegan2.GeneratorConfig, stylegan2.Generator),
    ("stylegan2", "discriminator"): (stylegan2.DiscriminatorConfig, stylegan2.Discriminator),
    ("stylegan3", "generator"): (stylegan3.GeneratorConfig, stylegan3.Generator),
    ("stylegan1", "generator"): (stylegan1.GeneratorConfig, stylegan1.Generator),
    ("stylegan1", "discriminator"): (stylegan1.DiscriminatorConfig, stylegan1.Discriminator),
    ("stylegan_xl", "discriminator"): (projected_discriminator.ProjectedDiscriminatorConfig, projected_discriminator.ProjectedDiscriminator),
}


def network_spec(net: torch.nn.Module) -> dict[str, Any]:
    """JSON-ready description from which `build_network` rebuilds `net`'s architecture."""
    for (family, kind), (_, cls) in NETWORKS.items():
        if type(net) is cls:
            return {"family": family, "kind": kind, "config": net.config.to_dict()}
    raise TypeError(f"no spec for network class {type(net).__name__}")


def build_network(spec: dict[str, Any]) -> torch.nn.Module:
    """Instantiate the network described by `spec` (weights freshly initialised)."""
    key = (spec.get("family"), spec.get("kind"))
    if key not in NETWORKS:
        known = ", ".join(f"{f}/{k}" for f, k in NETWORKS)
        raise ValueError(f"unknown network family/kind {key[0]}/{key[1]}; known: {known}")
    cfg_cls, net_cls = NETWORKS[key]
    return net_cls(cfg_cls.from_dict(spec["config"]))

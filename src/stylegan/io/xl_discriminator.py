"""Official StyleGAN-XL discriminators (`pg_modules.discriminator.ProjectedDiscriminator`) as our
`ProjectedDiscriminator`, built from the official constructor arguments; the official state dict (`D.*` names in
an official folder's `weights.safetensors`, see io.load) then loads as it is.

The official constructor is `ProjectedDiscriminator(backbones, diffaug=True, interp224=True, backbone_kwargs={},
**kwargs)`; XL's train.py passes `backbone_kwargs = {cout: 64, expand: True, proj_type: 2, num_discs: 4, cond}` and
the common `c_dim`, `img_resolution`, `img_channels` (which the official network ignores). Tensor names need no
table: ours are the official ones (see models.projected_discriminator).
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig

OFFICIAL_MODULE = "pg_modules.discriminator"
OFFICIAL_CLASS = "ProjectedDiscriminator"
_TOP_KEYS = {"backbones", "diffaug", "interp224", "backbone_kwargs", "c_dim", "img_resolution", "img_channels"}
_BACKBONE_KEYS = {"cout", "expand", "proj_type", "num_discs", "cond", "rand_embedding"}
_IGNORED_BACKBONE_KEYS = {"im_res"}  # accepted by the official F_RandomProj, then overridden with 256


def is_official_projected_discriminator(module: str, class_name: str) -> bool:
    """Whether `module.class_name` (or a dotted `class_name` alone) names the official XL discriminator."""
    dotted = class_name if "." in class_name else f"{module}.{class_name}"
    return dotted == f"{OFFICIAL_MODULE}.{OFFICIAL_CLASS}"


def projected_discriminator_config_from_official(init_kwargs: dict[str, Any]) -> ProjectedDiscriminatorConfig:
    """Official constructor arguments -> ProjectedDiscriminatorConfig (ValueError naming what is unsupported)."""
    unknown = sorted(set(init_kwargs) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{OFFICIAL_CLASS}: unsupported argument(s) {', '.join(unknown)}")
    if "backbones" not in init_kwargs:
        raise ValueError(f"{OFFICIAL_CLASS}: init_kwargs lack backbones")
    bk = dict(init_kwargs.get("backbone_kwargs") or {})
    unknown = sorted(set(bk) - _BACKBONE_KEYS - _IGNORED_BACKBONE_KEYS)
    if unknown:
        raise ValueError(f"{OFFICIAL_CLASS}: unsupported backbone_kwargs {', '.join(unknown)}")
    values: dict[str, Any] = {k: bk[k] for k in _BACKBONE_KEYS if k in bk}
    values.update({k: init_kwargs[k] for k in ("diffaug", "interp224", "c_dim", "img_resolution", "img_channels") if k in init_kwargs})
    values["backbones"] = list(init_kwargs["backbones"])
    if "cond" in values:
        values["cond"] = bool(values["cond"])
    return ProjectedDiscriminatorConfig(**values)


def projected_discriminator_from_official(init_kwargs: dict[str, Any]) -> ProjectedDiscriminator:
    """Our discriminator with the official one's architecture (random weights: load its state dict into it)."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        return ProjectedDiscriminator(projected_discriminator_config_from_official(init_kwargs))

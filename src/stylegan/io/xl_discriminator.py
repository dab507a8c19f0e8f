"""Official StyleGAN-XL discriminators (`pg_modules.discriminator.ProjectedDiscriminator`) as our
`ProjectedDiscriminator`: from the official constructor arguments and a state dict with the official names, and
from the official folder layout (`config.json` + `weights.safetensors` with `D.*` tensors).

The official constructor is `ProjectedDiscriminator(backbones, diffaug=True, interp224=True, backbone_kwargs={},
**kwargs)`; XL's train.py passes `backbone_kwargs = {cout: 64, expand: True, proj_type: 2, num_discs: 4, cond}` and
the common `c_dim`, `img_resolution`, `img_channels` (which the official network ignores). Tensor names need no
table: ours are the official ones (see models.projected_discriminator).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig
from .mismatch import describe_mismatch

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


def build_official_projected_discriminator(init_kwargs: dict[str, Any], state: dict[str, torch.Tensor],
                                           what: str = "D") -> ProjectedDiscriminator:
    """Our discriminator with the official one's architecture and weights (strict: every tensor must fit)."""
    with torch.random.fork_rng(devices=[]):  # building draws random weights that the state dict replaces
        net = ProjectedDiscriminator(projected_discriminator_config_from_official(init_kwargs))
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = describe_mismatch([
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in wrong]),
    ], n=4)
    if problems:
        raise ValueError(f"{what}: weights do not fit the projected discriminator: {problems}")
    net.load_state_dict(state, strict=True)
    return net


def load_official_discriminator_folder(path: str | Path, name: str = "D") -> ProjectedDiscriminator:
    """The discriminator `name` of an official folder: `config.json` with {name: {module, class_name, init_kwargs}}
    naming pg_modules.discriminator.ProjectedDiscriminator, and `weights.safetensors` with `<name>.*` tensors."""
    from safetensors.torch import load_file

    folder = Path(path)
    cfg = json.loads((folder / "config.json").read_text())
    entry = cfg.get(name)
    if not isinstance(entry, dict):
        raise ValueError(f"{folder / 'config.json'}: no {name!r} entry")
    if not is_official_projected_discriminator(entry.get("module", ""), entry.get("class_name", "")):
        raise ValueError(f"{folder / 'config.json'}: {name} is {entry.get('module')}.{entry.get('class_name')}, "
                         f"not {OFFICIAL_MODULE}.{OFFICIAL_CLASS}")
    tensors = load_file(str(folder / "weights.safetensors"))
    state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
    return build_official_projected_discriminator(entry.get("init_kwargs") or {}, state, name)

"""Official StyleGAN-XL discriminators (`pg_modules.discriminator.ProjectedDiscriminator`) as our
`ProjectedDiscriminator`, built from the official constructor arguments; the official state dict (`D.*` names in
an official folder's `weights.safetensors`, see io.load) then loads as it is.

Official training snapshots pickle the discriminator by reference (it is not a `persistence` class), together with
timm feature networks and dill closures (forward hooks, bound methods): the allow-list unpickler leaves all of those
inert and keeps each module's pickled `__dict__`. `discriminator_from_pickle` reads the architecture from the stored
attributes and the state dict from the `_parameters` / `_buffers` / `_modules` of that tree, running nothing.

The official constructor is `ProjectedDiscriminator(backbones, diffaug=True, interp224=True, backbone_kwargs={},
**kwargs)`; XL's train.py passes `backbone_kwargs = {cout: 64, expand: True, proj_type: 2, num_discs: 4, cond}` and
the common `c_dim`, `img_resolution`, `img_channels` (which the official network ignores). Tensor names need no
table: ours are the official ones (see models.projected_discriminator).
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig
from .safe_pickle import Inert, ModuleRecord

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


def build_projected_discriminator(cfg: ProjectedDiscriminatorConfig) -> ProjectedDiscriminator:
    """A discriminator to load weights into, built without touching the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        return ProjectedDiscriminator(cfg)


def projected_discriminator_from_official(init_kwargs: dict[str, Any]) -> ProjectedDiscriminator:
    """Our discriminator with the official one's architecture (random weights: load its state dict into it)."""
    return build_projected_discriminator(projected_discriminator_config_from_official(init_kwargs))


def _module_dict(obj: Any, where: str) -> dict[str, Any]:
    """The pickled `__dict__` of a torch.nn.Module: an allow-listed module record, or a class pickled by reference
    (timm, pg_modules) that the unpickler left inert."""
    state = obj.state if isinstance(obj, ModuleRecord) else obj.__dict__.get("state") if isinstance(obj, Inert) else None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), dict) for k in ("_parameters", "_buffers", "_modules")):
        raise ValueError(f"{where} is a {type(obj).__name__}, not a pickled torch.nn.Module")
    return state


def _children(obj: Any, where: str) -> dict[str, Any]:
    return {k: m for k, m in _module_dict(obj, where)["_modules"].items() if m is not None}


def _tensors(obj: Any, where: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """`state_dict()` of a pickled module tree: parameters, persistent buffers, then the submodules in order."""
    state = _module_dict(obj, where)
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, t in state[kind].items():
            if t is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{prefix}{name} is a {type(t).__name__}, not a tensor")
            out[prefix + name] = t.detach()
    for name, child in _children(obj, where).items():
        out.update(_tensors(child, prefix + name, f"{prefix}{name}."))
    return out


def discriminator_from_pickle(obj: Any, c_dim: int, img_resolution: int) -> tuple[ProjectedDiscriminatorConfig, dict[str, torch.Tensor]]:
    """The config and state dict of an official `ProjectedDiscriminator` unpickled as data (see the module doc);
    `c_dim` and `img_resolution` are the generator's (the official constructor's common arguments, not stored).
    ValueError naming what does not fit."""
    top = _module_dict(obj, "D")
    backbones = top.get("backbones")
    if not isinstance(backbones, (list, tuple)) or not all(isinstance(b, str) for b in backbones):
        raise ValueError(f"stored backbones {backbones!r} are not a list of names")
    features = _children(_children(obj, "D").get("feature_networks"), "feature_networks")
    discs = _children(_children(obj, "D").get("discriminators"), "discriminators")
    if list(features) != list(backbones) or list(discs) != list(backbones):
        raise ValueError(f"feature networks {list(features)} and discriminators {list(discs)} do not match backbones {list(backbones)}")
    proj = _module_dict(features[backbones[0]], f"feature_networks.{backbones[0]}")
    minis = _children(_children(discs[backbones[0]], f"discriminators.{backbones[0]}").get("mini_discs"), "mini_discs")
    kwargs: dict[str, Any] = {k: proj[k] for k in ("cout", "expand", "proj_type") if k in proj}
    cond = "embed" in _children(next(iter(minis.values())), "mini_discs.0") if minis else False
    cfg = projected_discriminator_config_from_official({
        "backbones": list(backbones), "diffaug": bool(top.get("diffaug", True)), "interp224": bool(top.get("interp224", True)),
        "backbone_kwargs": {**kwargs, "num_discs": len(minis), "cond": cond},
        "c_dim": c_dim, "img_resolution": img_resolution, "img_channels": 3})
    return cfg, _tensors(obj, "D")

"""Import of autonomousvision/stylegan-xl networks: official pickles (dill + `torch_utils.persistence`),
the official folder format and the class-embedding pickle, all read as data.

An official XL generator is rebuilt from what its objects store, never from its top-level constructor
arguments: `SuperresGenerator(path_stem=...)` only names a stem file on the authors' machine. Each synthesis
layer keeps its own `SynthesisLayer` constructor arguments, the synthesis network its (mutated) `layer_names`,
the mapping network its arguments and the real `num_ws`. `describe_persistent` turns an unpickled object tree
into the same description `config.json` of the official folder format holds, and
`generator_config_from_official` turns that description into our config.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
from typing import Any

import numpy as np
import torch

from ..models import stylegan3
from ..models.stylegan_xl import GeneratorConfig, GrowthStage, LayerConfig, MappingConfig, StageHistory, SynthesisConfig
from .official import SG3_SYNTHESIS_KEYS, take_kwargs
from .safe_pickle import Inert, ModuleRecord, PersistentObject, TorchModule, safe_load

XL_MODULE = "training.networks_stylegan3_resetting"
XL_DISCRIMINATOR = "pg_modules.discriminator.ProjectedDiscriminator"
_XL_SRC = re.compile(r"class\s+SuperresGenerator\b")

_MAPPING_KEYS = {"num_layers", "lr_multiplier", "w_avg_beta", "rand_embedding"}
_MAPPING_IGNORED = {"z_dim", "c_dim", "w_dim", "num_ws"}  # the generator's own values (num_ws goes stale on growth)
_LAYER_KEYS = {f.name for f in dataclasses.fields(LayerConfig)} - {"name"}
_TOP_ATTRIBUTES = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws", "up_factor", "path_stem")
_SYNTHESIS_ATTRIBUTES = ("num_ws", "img_resolution", "num_layers", "num_critical", "margin_size", "output_scale", "num_fp16_res")


def is_xl_source(module_src: str) -> bool:
    """Whether a persistent object's stored module source is StyleGAN-XL's `networks_stylegan3_resetting.py`."""
    return bool(_XL_SRC.search(module_src))


def is_xl_discriminator(obj: Any) -> bool:
    """An XL `ProjectedDiscriminator` (a plain module, pickled by reference, so the unpickler left it inert)."""
    return isinstance(obj, Inert) and type(obj).qualified_name == XL_DISCRIMINATOR


def _plain(x: Any) -> Any:
    """Plain Python data from pickled settings (numpy scalars and 0-d arrays become numbers)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0:
        return x.item()
    return x


def _child(obj: ModuleRecord, name: str, where: str) -> ModuleRecord:
    child = obj.submodules().get(name)
    if child is None:
        raise ValueError(f"{where} has no submodule {name!r}")
    return child


def describe_persistent(obj: PersistentObject) -> dict[str, Any]:
    """The official folder's `config.json` entry for an unpickled XL generator (`Generator` or `SuperresGenerator`)."""
    mapping = _child(obj, "mapping", obj.class_name)
    synthesis = _child(obj, "synthesis", obj.class_name)
    layer_names = [str(n) for n in synthesis.state.get("layer_names") or []]
    layers = []
    for name in layer_names:
        layer = _child(synthesis, name, "synthesis")
        if not isinstance(layer, PersistentObject):
            raise ValueError(f"synthesis.{name} is a {type(layer).__name__}, not a persistent SynthesisLayer")
        layers.append({"name": name, "class_name": layer.class_name, "init_kwargs": _plain(layer.init_kwargs)})
    inp = _child(synthesis, "input", "synthesis")
    embed = _child(mapping, "embed", "mapping")
    if not isinstance(embed, TorchModule) or embed.class_name != "Embedding":
        raise ValueError(f"mapping.embed is a {type(embed).__name__}, not a torch.nn.Embedding")
    if embed.state.get("padding_idx") is not None or embed.state.get("max_norm") is not None:
        raise ValueError("mapping.embed has padding_idx or max_norm set: not a plain lookup table")
    if not isinstance(mapping, PersistentObject) or not isinstance(synthesis, PersistentObject) or not isinstance(inp, PersistentObject):
        raise ValueError(f"{obj.class_name}: mapping, synthesis and synthesis.input must be persistent objects")
    entry = {
        "module": XL_MODULE,
        "class_name": obj.class_name,
        "init_kwargs": _plain(obj.init_kwargs),
        "attributes": {k: _plain(obj.state[k]) for k in _TOP_ATTRIBUTES if k in obj.state},
        "mapping": {"class_name": mapping.class_name, "init_kwargs": _plain(mapping.init_kwargs), "num_ws": _plain(mapping.state.get("num_ws"))},
        "synthesis": {"class_name": synthesis.class_name, "init_kwargs": _plain(synthesis.init_kwargs), "layer_names": layer_names,
                      **{k: _plain(synthesis.state[k]) for k in _SYNTHESIS_ATTRIBUTES if k in synthesis.state}},
        "synthesis_input": {"class_name": inp.class_name, "init_kwargs": _plain(inp.init_kwargs)},
        "layers": layers,
    }
    if "head_layer_names" in obj.state:
        entry["head_layer_names"] = [str(n) for n in obj.state["head_layer_names"]]
    return entry


def generator_config_from_official(entry: dict[str, Any], state: dict[str, torch.Tensor]) -> GeneratorConfig:
    """An official XL generator description (`describe_persistent` or the folder's `config.json` entry) and its
    state dict -> GeneratorConfig: the layers from each layer's own arguments, the stage history from the stem's
    (stale) synthesis arguments and the last growth stage where that is the whole history."""
    class_name = entry.get("class_name")
    if class_name not in ("Generator", "SuperresGenerator"):
        raise ValueError(f"unsupported StyleGAN-XL class {XL_MODULE}.{class_name}")
    attrs = dict(entry.get("attributes") or {})
    top = {**dict(entry.get("init_kwargs") or {}), **attrs}
    syn = dict(entry["synthesis"])
    syn_init = dict(syn["init_kwargs"])
    map_init = dict(entry["mapping"]["init_kwargs"])
    w_dim = int(syn_init["w_dim"])
    img_channels = int(top.get("img_channels", syn_init.get("img_channels", 3)))
    img_resolution = int(syn["img_resolution"] if "img_resolution" in syn else top["img_resolution"])  # the mutated attribute: the real one

    layers = []
    for item in entry["layers"]:
        kwargs = dict(item["init_kwargs"])
        if int(kwargs.pop("w_dim", w_dim)) != w_dim:
            raise ValueError(f"layer {item['name']}: w_dim differs from the synthesis network's {w_dim}")
        layers.append(LayerConfig(name=str(item["name"]), **take_kwargs(kwargs, _LAYER_KEYS, set(), f"layer {item['name']} arguments")))
    if "layer_names" in syn and list(syn["layer_names"]) != [lc.name for lc in layers]:
        raise ValueError("synthesis.layer_names do not name the listed layers in order")
    _check_input(entry["synthesis_input"]["init_kwargs"], layers[0] if layers else None)

    mapping_kw = take_kwargs(map_init, _MAPPING_KEYS, _MAPPING_IGNORED, "mapping arguments")
    embed = state.get("mapping.embed.weight")
    if embed is None or embed.ndim != 2:
        raise ValueError("mapping.embed.weight (the class embedding) is missing")
    mapping = MappingConfig(
        num_layers=int(mapping_kw.get("num_layers", 2)), lr_multiplier=float(mapping_kw.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mapping_kw.get("w_avg_beta", 0.998)), embed_classes=int(embed.shape[0]),
        embed_features=int(embed.shape[1]), class_embed="random" if mapping_kw.get("rand_embedding") else "imagenet",
    )
    return GeneratorConfig(
        z_dim=int(top["z_dim"]), c_dim=int(top["c_dim"]), w_dim=w_dim,
        img_resolution=img_resolution, img_channels=img_channels, mapping=mapping,
        synthesis=SynthesisConfig(layers=layers, output_scale=float(syn.get("output_scale", syn_init.get("output_scale", 0.25)))),
        history=_history(class_name, top, syn_init, img_resolution),
    )


def _check_input(kwargs: dict[str, Any], first: LayerConfig | None) -> None:
    """The Fourier-feature input is specified by the first layer's input side; refuse anything else."""
    if first is None:
        raise ValueError("the synthesis network has no layers")
    want = {"channels": first.in_channels, "size": first.in_size, "sampling_rate": first.in_sampling_rate, "bandwidth": first.in_cutoff}
    got = {k: kwargs.get(k) for k in want}
    if got != want:
        raise ValueError(f"synthesis.input {got} does not match the first layer's input {want}")


def _history(class_name: str, top: dict[str, Any], syn_init: dict[str, Any], img_resolution: int) -> StageHistory | None:
    """Stem + stages where the pickle determines them: a stem, or one super-resolution stage on it. Earlier stages
    of a network grown more than once are not recorded in it (their stems were separate files)."""
    stem_kw = {k: v for k, v in syn_init.items() if k not in ("w_dim", "img_resolution", "img_channels")}
    stem = stylegan3.SynthesisConfig(**take_kwargs(stem_kw, SG3_SYNTHESIS_KEYS, set(), "stem synthesis arguments"))
    stem_resolution = int(syn_init["img_resolution"])
    if class_name == "Generator":
        return StageHistory(stem_resolution=stem_resolution, stem=stem, stages=[])
    stage = GrowthStage(up_factor=int(top["up_factor"]), head_layers=int(top["head_layers"]))
    if stem_resolution * stage.up_factor != img_resolution:
        return None
    return StageHistory(stem_resolution=stem_resolution, stem=stem, stages=[stage])


def read_class_embedding(path: str | os.PathLike) -> torch.Tensor:
    """The class embedding of the official `in_embeddings/*.pkl` ({'embed': torch.nn.Embedding}, pickled with dill),
    read through the allow-list unpickler: weight [num_classes, features] float32."""
    with open(path, "rb") as f:
        data, _ = safe_load(f)
    embed = data.get("embed") if isinstance(data, dict) else None
    if not isinstance(embed, TorchModule) or embed.class_name != "Embedding":
        raise pickle.UnpicklingError(f"{path}: expected {{'embed': torch.nn.Embedding}}, found {type(data).__name__}")
    if embed.state.get("padding_idx") is not None or embed.state.get("max_norm") is not None:
        raise ValueError(f"{path}: embedding with padding_idx or max_norm is not a plain lookup table")
    return embed.state_dict()["weight"].to(torch.float32).contiguous()

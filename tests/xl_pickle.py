"""A writer for StyleGAN-XL network pickles in the official layout: dill + `torch_utils.persistence`.

The generators are persistent objects whose stored module source would write a marker file if it ran; the class
embedding is a plain `torch.nn.Embedding`; the discriminator is a plain (non-persistent) `ProjectedDiscriminator`
holding a timm-like feature network, dill-pickled closures (`_create_function`, `_create_code`, `_create_cell`,
`_load_type('CodeType')`), a dill set (`_load_type('set')`) and an `os.system` gadget. `official_discriminator(D)`
turns one of our projected discriminators into the module tree the official code pickles (pg_modules and timm
classes by reference, spectral norm as torch's hook on a plain Conv2d, FullyConnectedLayer persistent), with those
closures and the gadget attached. dill, timm and the XL
repository are not installed: their globals are written by name through stand-ins registered in `sys.modules` only
while pickling, as helpers.py does for dnnlib.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import json
import os
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from helpers import _official_names, _Persistent, persistent_object

XL_MODULE_SRC = (
    "import os\nos.system('touch {marker}')\nopen('{marker}', 'w').write('executed')\n"
    "class SynthesisInput(torch.nn.Module):\n    pass\n"
    "class SuperresGenerator(torch.nn.Module):\n    def __init__(self, img_resolution, path_stem, head_layers, up_factor):\n"
    "        G_stem = legacy.load_network_pkl(dnnlib.util.open_url(path_stem))['G_ema']\n"
)
FOREIGN_MODULES = ("dill", "timm", "pg_modules", "feature_networks", "torch_utils", "training", "dnnlib", "legacy")


def _load_type(name: str) -> Any:  # only its name is pickled (dill._dill._load_type)
    raise AssertionError


def _create_function(*args: Any) -> Any:  # dill._dill._create_function
    raise AssertionError


def _create_cell(*args: Any) -> Any:  # dill._dill._create_cell
    raise AssertionError


class _DillType:
    """Pickles as dill's `_load_type(name)`; callable, so it can head a REDUCE as dill's builtin types do."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        raise AssertionError

    def __reduce__(self) -> tuple:
        return (_load_type, (self.name,))


class _Reduce:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return (self.func, self.args)


class EfficientNet(torch.nn.Module):  # pickled by reference as timm.models.efficientnet.EfficientNet
    def __init__(self) -> None:
        super().__init__()
        self.conv_stem = torch.nn.Conv2d(3, 8, 3)
        self.bn1 = torch.nn.BatchNorm2d(8)


class ProjectedDiscriminator(torch.nn.Module):  # pickled by reference as pg_modules.discriminator.ProjectedDiscriminator
    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.backbones = ["deit_base_distilled_patch16_224", "tf_efficientnet_lite0"]
        self.feature_networks = torch.nn.ModuleDict({"tf_efficientnet_lite0": EfficientNet()})
        self.discriminators = torch.nn.ModuleDict({"tf_efficientnet_lite0": torch.nn.Sequential(torch.nn.Conv2d(8, 1, 1))})
        code = _Reduce(_DillType("CodeType"), 1, 0, 0, 1, 2, 67, b"d\x00S\x00", (None,), (), ("x",), "<hook>", "hook", 1, b"")
        self.hook = _Reduce(_create_function, code, {}, "hook", None, (_Reduce(_create_cell, {"activations": 1}),))
        self.seen = _Reduce(_DillType("set"), ["a", "b"])
        self.gadget = _Reduce(os.system, f"touch {marker}")


# Our discriminator's classes -> the classes the official code pickles (by reference) in their place.
_OFFICIAL_CLASSES = {
    "MultiScaleD": "pg_modules.discriminator.MultiScaleD",
    "DownBlock": "pg_modules.blocks.DownBlock",
    "CrossScaleBlock": "pg_modules.blocks.FeatureFusionBlock",
    "FeatureProjector": "pg_modules.projector.F_RandomProj",
    "Conv2dSame": "timm.models.layers.conv2d_same.Conv2dSame",
    "DepthwiseSeparableConv": "timm.models.efficientnet_blocks.DepthwiseSeparableConv",
    "InvertedResidual": "timm.models.efficientnet_blocks.InvertedResidual",
    "DistilledViT": "timm.models.vision_transformer.VisionTransformerDistilled",
    "PatchEmbed": "timm.models.layers.patch_embed.PatchEmbed",
    "Block": "timm.models.vision_transformer.Block",
    "Attention": "timm.models.vision_transformer.Attention",
    "Mlp": "timm.models.layers.mlp.Mlp",
    "TokenSlice": "feature_networks.vit.ProjectReadout",
    "Transpose12": "feature_networks.vit.Transpose",
    "SingleDisc": "pg_modules.discriminator.SingleDisc",  # MiniDiscriminator, unconditional
    "SingleDiscCond": "pg_modules.discriminator.SingleDiscCond",  # MiniDiscriminator, conditional
}

_STANDINS: dict[str, dict[str, Any]] = {
    "dill._dill": {"_load_type": _load_type, "_create_function": _create_function, "_create_cell": _create_cell},
    "timm.models.efficientnet": {"EfficientNet": EfficientNet},
    "pg_modules.discriminator": {"ProjectedDiscriminator": ProjectedDiscriminator},
}
for _qualified in _OFFICIAL_CLASSES.values():
    _module, _name = _qualified.rsplit(".", 1)
    _STANDINS.setdefault(_module, {})[_name] = type(_name, (), {})


@contextlib.contextmanager
def _xl_names() -> Iterator[None]:
    """Make the stand-ins picklable under their official names (and dnnlib / torch_utils through helpers)."""
    saved = {}
    with _official_names():
        for module, names in _STANDINS.items():
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                saved.setdefault(name, sys.modules.get(name))
                sys.modules.setdefault(name, types.ModuleType(name))
            for attr, obj in names.items():
                setattr(sys.modules[module], attr, obj)
                old = (obj.__module__, obj.__qualname__)
                saved[("attr", obj)] = old
                obj.__module__, obj.__qualname__ = module, attr
        try:
            yield
        finally:
            for key, value in saved.items():
                if isinstance(key, tuple):
                    key[1].__module__, key[1].__qualname__ = value
                elif value is None:
                    sys.modules.pop(key, None)
                else:
                    sys.modules[key] = value


def _fc(fc: torch.nn.Module, src: str) -> _Persistent:
    return persistent_object(fc, "FullyConnectedLayer", src, dict(in_features=fc.in_features, out_features=fc.out_features,
                       activation=fc.activation), {}, weight_gain=np.float64(fc.weight_gain), bias_gain=fc.bias_gain)


class _ByReference:
    """Pickles as pickle pickles a module of class `cls`: NEWOBJ of the class (by reference), then BUILD with `state`."""

    def __init__(self, cls: type, state: dict[str, Any]) -> None:
        self._cls, self._state = cls, state

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # pickle checks NEWOBJ's class against the object's
        return self._cls

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (copyreg.__newobj__, (self._cls,), self._state)


def _module_state(m: torch.nn.Module, children: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    empty = collections.OrderedDict
    return {"training": m.training, "_parameters": empty(m._parameters), "_buffers": empty(m._buffers),
            "_non_persistent_buffers_set": set(m._non_persistent_buffers_set), "_backward_hooks": empty(),
            "_forward_hooks": empty(), "_forward_pre_hooks": empty(), "_state_dict_hooks": empty(),
            "_load_state_dict_pre_hooks": empty(), "_modules": empty(children), **attrs}


def _dill_hook() -> _Reduce:
    code = _Reduce(_DillType("CodeType"), 1, 0, 0, 1, 2, 67, b"d\x00S\x00", (None,), (), ("x",), "<hook>", "hook", 1, b"")
    return _Reduce(_create_function, code, {}, "hook", None, (_Reduce(_create_cell, {"activations": 1}),))


def official_discriminator(D: torch.nn.Module, marker: Path) -> _ByReference:
    """Our `ProjectedDiscriminator` as the official code's object tree pickles: the same tensors under the same names,
    held by pg_modules / timm classes pickled by reference, spectral norm as torch's hook on a plain Conv2d (weight_orig,
    weight_u, weight_v and the `weight` attribute it computes), the projection's FullyConnectedLayer persistent, a
    dill closure as a forward hook of every feature network and an `os.system` gadget on top."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    cfg, src = D.config, XL_MODULE_SRC.format(marker=marker)

    def convert(m: torch.nn.Module) -> Any:
        kind = type(m).__name__
        if kind == "FullyConnectedLayer":
            return _fc(m, src)
        state = _module_state(m, {k: convert(c) for k, c in m._modules.items() if c is not None})
        if kind == "SNConv2d":
            w = m.weight_orig
            state.update(weight=m.normalized_weight().detach(), in_channels=w.shape[1], out_channels=w.shape[0],
                         kernel_size=tuple(w.shape[2:]), stride=(m.stride, m.stride), padding=(m.padding, m.padding))
            state["_forward_pre_hooks"][0] = SpectralNorm("weight", 1, 0, 1e-12)
            return _ByReference(torch.nn.Conv2d, state)
        if kind == "ProjectedDiscriminator":
            state.update(backbones=list(cfg.backbones), diffaug=cfg.diffaug, interp224=cfg.interp224,
                         seen=_Reduce(_DillType("set"), ["a"]), gadget=_Reduce(os.system, f"touch {marker}"))
            return _ByReference(ProjectedDiscriminator, state)
        if kind == "FeatureProjector":
            state.update(proj_type=cfg.proj_type, backbone=m.info.name, cout=cfg.cout, expand=cfg.expand,
                         normstats={"mean": list(m.info.mean), "std": list(m.info.std)}, CHANNELS=m.channels, RESOLUTIONS=m.resolutions)
            state["_modules"]["pretrained"]._state["_forward_hooks"][0] = _dill_hook()
        if kind == "MiniDiscriminator":
            kind = "SingleDiscCond" if m.cond else "SingleDisc"
        if type(m).__module__.startswith("torch.nn"):
            return _ByReference(type(m), state)
        if kind in ("EfficientNetStages", "ViTStages"):  # the official `pretrained` is a bare nn.Module
            return _ByReference(torch.nn.Module, state)
        module, name = _OFFICIAL_CLASSES[kind].rsplit(".", 1)
        return _ByReference(_STANDINS[module][name], state)

    return convert(D)


def xl_generator(G: torch.nn.Module, entry: dict, src: str) -> _Persistent:
    """Our loaded XL generator `G` wrapped as the official object tree described by the folder entry `entry`."""
    syn, m = G.synthesis, G.mapping
    layers = {}
    for item in entry["layers"]:
        layer = getattr(syn, item["name"])
        layers[item["name"]] = persistent_object(layer, "SynthesisLayer", src, item["init_kwargs"], {"affine": _fc(layer.affine, src)},
                                           in_size=np.broadcast_to(np.asarray(layer.in_size), [2]))
    inp = persistent_object(syn.input, "SynthesisInput", src, entry["synthesis_input"]["init_kwargs"], {"affine": _fc(syn.input.affine, src)},
                      size=np.broadcast_to(np.asarray(syn.input.size), [2]), sampling_rate=np.float64(syn.input.sampling_rate))
    s = entry["synthesis"]
    synthesis = persistent_object(syn, "SynthesisNetwork", src, s["init_kwargs"], {"input": inp, **layers},
                            layer_names=list(s["layer_names"]), **{k: s[k] for k in ("num_ws", "img_resolution", "num_layers", "num_critical",
                                                                                       "margin_size", "output_scale", "num_fp16_res")})
    mapping_children = {"embed": m.embed, "embed_proj": _fc(m.embed_proj, src) if m.embed_proj is not None else None}
    mapping_children.update({f"fc{i}": _fc(getattr(m, f"fc{i}"), src) for i in range(m.num_layers)})
    mapping = persistent_object(m, "MappingNetwork", src, entry["mapping"]["init_kwargs"], mapping_children,
                          num_ws=entry["mapping"]["num_ws"], w_avg_beta=0.998)
    extra = {"head_layer_names": entry["head_layer_names"]} if "head_layer_names" in entry else {}
    return persistent_object(G, entry["class_name"], src, entry["init_kwargs"], {"mapping": mapping, "synthesis": synthesis},
                       **entry["attributes"], **extra)


def xl_pickle_bytes(payload: dict[str, Any]) -> bytes:
    with _xl_names():
        return pickle.dumps(payload, protocol=4)


def write_xl_pickle(fixture: Path, out: Path, marker: Path, with_d: bool = True, D: torch.nn.Module | None = None) -> None:
    """Re-pack an XL parity folder as an official training snapshot: {G, D, G_ema, augment_pipe,
    training_set_kwargs, progress}, G and G_ema from the folder, D `official_discriminator(D)` or else (`with_d`)
    a stand-in that is no real discriminator."""
    from stylegan import load_network

    entry = json.loads((fixture / "config.json").read_text())["G_ema"]
    G = load_network(fixture).G_ema
    src = XL_MODULE_SRC.format(marker=marker)
    payload = {
        "G": xl_generator(G, entry, src),
        "D": official_discriminator(D, marker) if D is not None else ProjectedDiscriminator(marker) if with_d else None,
        "G_ema": xl_generator(G, entry, src),
        "augment_pipe": None,
        "training_set_kwargs": {"path": "~/datasets/imagenet32.zip", "use_labels": True, "resolution": G.img_resolution},
        "progress": {"cur_nimg": torch.LongTensor([1000]), "best_fid": 12.5},
    }
    out.write_bytes(xl_pickle_bytes(payload))

"""`load_network`: one entry point for every checkpoint format users already have."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..models import stylegan1, stylegan2, stylegan3, stylegan_xl
from ..models.common import Generator
from ..models.registry import build_network, network_spec
from . import official, official_xl, xl_discriminator
from .download import WeightsUnavailable
from .feature_weights import restore_frozen_backbones
from .checkpoint import read_checkpoint, save_checkpoint
from .errors import NetworkLoadError
from .mismatch import describe_mismatch
from .safe_pickle import PersistentObject, TFNetwork, safe_load

NETWORK_NAMES = ("G", "D", "G_ema")
__all__ = ["NETWORK_NAMES", "Network", "NetworkLoadError", "load_network"]
M = TypeVar("M", bound=torch.nn.Module)


@dataclass
class Network:
    """The networks of one checkpoint; absent ones are None."""

    G_ema: Generator | None = None
    G: Generator | None = None
    D: torch.nn.Module | None = None
    source_format: str = "native"
    extra: dict[str, Any] = field(default_factory=dict)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {name: net for name in NETWORK_NAMES if (net := getattr(self, name)) is not None}

    @property
    def generator(self) -> Generator:
        """G_ema if present (the one to sample from), else G."""
        net = self.G_ema if self.G_ema is not None else self.G
        if net is None:
            raise NetworkLoadError("checkpoint holds no generator")
        return net

    def save(self, path: str | os.PathLike) -> None:
        """Write a native checkpoint (safetensors + JSON configs, atomic)."""
        save_checkpoint(path, {name: (network_spec(net), net.state_dict()) for name, net in self.networks().items()}, self.extra)

    def to(self, device: torch.device | str) -> Network:
        for net in self.networks().values():
            net.to(device)
        return self


def load_network(path: str | os.PathLike, device: torch.device | str = "cpu") -> Network:
    """Load G_ema / G / D from a native checkpoint (.safetensors), an official network pickle
    (stylegan2-ada-pytorch, stylegan3, or NVlabs/stylegan / stylegan2 TensorFlow), a folder with the official
    `config.json` + `weights.safetensors`, or a rosinality/stylegan2-pytorch torch file.
    Networks come back in eval mode with gradients disabled."""
    p = Path(path)
    try:
        if not p.exists():
            raise NetworkLoadError("no such file or directory")
        net = _load_any(p)
    except NetworkLoadError as e:
        raise NetworkLoadError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NetworkLoadError(f"{path}: corrupt or unsupported pickle: {first_line}") from None
    except (ValueError, KeyError, RuntimeError, OSError, TypeError, AttributeError, IndexError, MemoryError) as e:
        # a damaged or forged file whose content does not have the shape the readers expect
        first_line = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise NetworkLoadError(f"{path}: {type(e).__name__}: {first_line}") from None
    for module in net.networks().values():
        module.eval().requires_grad_(False).to(device)
    return net


def _load_any(p: Path) -> Network:
    if p.is_dir():
        if (p / "config.json").is_file() and (p / "weights.safetensors").is_file():
            return _load_official_folder(p)
        raise NetworkLoadError("directory holds no config.json + weights.safetensors")
    with open(p, "rb") as f:
        head = f.read(16)
    if head[:2] == b"PK":
        return _load_torch_file(p)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Checked before the pickle
    # test because that length's first byte can be 0x80 too.
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") + 8 <= p.stat().st_size:
        return _load_native(p)
    if head[:1] == b"\x80":
        return _load_pickle(p)
    raise NetworkLoadError("unrecognised file format (expected .safetensors, .pkl, .pt or a folder)")


# ----------------------------------------------------------------------------- native


def _load_native(p: Path) -> Network:
    nets, extra = read_checkpoint(p)
    out = Network(source_format="native", extra=extra)
    for name, (spec, state) in nets.items():
        if name not in NETWORK_NAMES:
            raise NetworkLoadError(f"unknown network name {name!r} in checkpoint")
        if name == "D" and extra.get("feature_weights"):  # a StyleGAN-XL D whose pretrained feature networks are stored by reference
            try:
                state = restore_frozen_backbones(state, extra["feature_weights"], download=False)
            except WeightsUnavailable as e:
                out.extra["D_not_loaded"] = f"D: its feature networks are stored by reference and their weights are not at hand: {e}"
                continue
        setattr(out, name, _with_state(build_network(spec), state, name))
    return out


def _with_state(net: M, state: dict[str, torch.Tensor], what: str) -> M:
    """load_state_dict(strict) with a readable message listing what does not fit."""
    own = net.state_dict()
    state = {k: v.reshape([]) if k in own and own[k].ndim == 0 and v.shape == (1,) else v for k, v in state.items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = describe_mismatch([
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in wrong]),
    ], n=4)
    if problems:
        raise NetworkLoadError(f"{what}: weights do not fit the architecture: {problems}")
    net.load_state_dict(state, strict=True)
    return net


# ----------------------------------------------------------------------------- official (NVlabs)


def _build_official(name: str, module: str, class_name: str, init_kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net: torch.nn.Module
    if xl_discriminator.is_official_projected_discriminator(module, class_name):
        net = xl_discriminator.projected_discriminator_from_official(init_kwargs)
    elif module == "training.networks_stylegan3":
        if class_name != "Generator":
            raise NetworkLoadError(f"{name}: unsupported class {module}.{class_name}")
        net = stylegan3.Generator(official.stylegan3_generator_config_from_official(init_kwargs))
    elif class_name == "Generator":
        net = stylegan2.Generator(official.generator_config_from_official(init_kwargs, module))
    elif class_name == "Discriminator":
        net = stylegan2.Discriminator(official.discriminator_config_from_official(init_kwargs, module))
    else:
        raise NetworkLoadError(f"{name}: unsupported class {module}.{class_name}")
    return _with_state(net, state, name)


def _build_official_xl(name: str, entry: dict[str, Any], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A StyleGAN-XL generator from its official description (folder `config.json` entry or unpickled objects)."""
    try:
        cfg = official_xl.generator_config_from_official(entry, state)
    except (KeyError, TypeError) as e:
        raise NetworkLoadError(f"{name}: incomplete StyleGAN-XL description ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise NetworkLoadError(f"{name}: {e}") from None
    try:
        return _with_state(stylegan_xl.Generator(cfg), state, name)
    except ValueError as e:
        if isinstance(e, NetworkLoadError):
            raise
        raise NetworkLoadError(f"{name}: {e}") from None


def _load_official_folder(p: Path) -> Network:
    from safetensors.torch import load_file

    cfg = json.loads((p / "config.json").read_text())
    tensors = load_file(str(p / "weights.safetensors"))
    out = Network(source_format="official-folder")
    for name in NETWORK_NAMES:
        if name not in cfg:
            continue
        entry = cfg[name]
        state = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if entry.get("module") == official_xl.XL_MODULE:
            setattr(out, name, _build_official_xl(name, entry, state))
            continue
        setattr(out, name, _build_official(name, entry["module"], entry["class_name"], entry["init_kwargs"], state))
    if not out.networks():
        raise NetworkLoadError(f"config.json names none of {', '.join(NETWORK_NAMES)}")
    return out


_STYLEGAN3_SRC = re.compile(r"class\s+SynthesisInput\b")
_SG3_REPO_SRC = re.compile(r"device\.type\s*!=\s*['\"]cuda['\"]")


def official_module_of(obj: PersistentObject) -> str:
    """Which official module a persistent object came from, judged from its stored source text."""
    if official_xl.is_xl_source(obj.module_src):  # XL's file also defines SynthesisInput: test it first
        return official_xl.XL_MODULE
    if _STYLEGAN3_SRC.search(obj.module_src):
        return "training.networks_stylegan3"
    if _SG3_REPO_SRC.search(obj.module_src):
        return "training.networks_stylegan2"
    return "training.networks"


def _load_pickle(p: Path) -> Network:
    with open(p, "rb") as f:
        data, inert = safe_load(f)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, TFNetwork) for x in data):
        return _load_tf(data)
    if official_xl.is_xl_discriminator(data):
        raise NetworkLoadError(f"holds a StyleGAN-XL discriminator alone ({official_xl.XL_DISCRIMINATOR}); "
                               "expected a network pickle with G / G_ema")
    if not isinstance(data, dict) or not any(k in data for k in NETWORK_NAMES):
        kind = type(data).__name__
        raise NetworkLoadError(f"not a network pickle: found a {kind}, expected a dict with G/D/G_ema or a TF (G, D, Gs) tuple")
    out = Network(source_format="official-pickle")
    xl_discriminators = {}
    for name in NETWORK_NAMES:
        obj = data.get(name)
        if obj is None:
            continue
        if official_xl.is_xl_discriminator(obj):
            xl_discriminators[name] = obj  # built once the generator says what c_dim and resolution it serves
            continue
        if not isinstance(obj, PersistentObject):
            raise NetworkLoadError(f"{name} is a {type(obj).__name__}, not an official persistent network")
        module = official_module_of(obj)
        if module == official_xl.XL_MODULE:
            try:
                entry = official_xl.describe_persistent(obj)
            except ValueError as e:
                raise NetworkLoadError(f"{name}: {e}") from None
            setattr(out, name, _build_official_xl(name, entry, obj.state_dict()))
            continue
        setattr(out, name, _build_official(name, module, obj.class_name, obj.init_kwargs, obj.state_dict()))
    for name, obj in xl_discriminators.items():
        _load_xl_discriminator(out, name, obj)
    if out.G is None and out.G_ema is None:
        if xl_discriminators:
            raise NetworkLoadError(f"holds only a StyleGAN-XL discriminator ({official_xl.XL_DISCRIMINATOR}), no G / G_ema")
    if isinstance(data.get("augment_pipe"), PersistentObject):
        aug = data["augment_pipe"]
        out.extra["augment_pipe"] = {"class_name": aug.class_name, "init_kwargs": _jsonable(aug.init_kwargs)}
    if isinstance(data.get("training_set_kwargs"), dict):
        out.extra["training_set_kwargs"] = _jsonable(data["training_set_kwargs"])
    if inert:
        out.extra["inert_globals"] = sorted(set(inert))
    return out


def _load_xl_discriminator(out: Network, name: str, obj: Any) -> None:
    """An XL discriminator (a plain module pickled by reference) read from its pickled module tree as data, sized by
    the pickle's generator; where that tree cannot be read as one of ours, D stays unloaded and `extra` says why."""
    G = out.G_ema if out.G_ema is not None else out.G
    try:
        if G is None:
            raise ValueError("no generator to take c_dim and the resolution from")
        cfg, state = xl_discriminator.discriminator_from_pickle(obj, G.c_dim, G.img_resolution)
        setattr(out, name, _with_state(xl_discriminator.build_projected_discriminator(cfg), state, name))
    except ValueError as e:  # NetworkLoadError included
        reason = str(e).removeprefix(f"{name}: ")
        out.extra["D_not_loaded"] = f"{name}: {official_xl.XL_DISCRIMINATOR} not loaded: {reason}"


def _jsonable(x: Any) -> Any:
    """Plain JSON data from pickled settings; anything else becomes its repr."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return x.item()
    return repr(x)


def _load_tf(data: tuple[TFNetwork, TFNetwork, TFNetwork]) -> Network:
    from . import tf_stylegan1
    from .tf_stylegan2 import from_tf_networks

    if tf_stylegan1.is_stylegan1(data[0], data[1]):  # NVlabs/stylegan (2019): G_style / D_basic
        g1, d1, states = tf_stylegan1.from_tf_networks(*data)
        out = Network(source_format="tf-stylegan1-pickle")
        out.G = _with_state(stylegan1.Generator(g1), states["G"], "G")
        out.G_ema = _with_state(stylegan1.Generator(g1), states["G_ema"], "G_ema")
        out.D = _with_state(stylegan1.Discriminator(d1), states["D"], "D")
        return out

    g2, d2, states = from_tf_networks(*data)
    out = Network(source_format="tf-pickle")
    out.G = _with_state(stylegan2.Generator(g2), states["G"], "G")
    out.G_ema = _with_state(stylegan2.Generator(g2), states["G_ema"], "G_ema")
    out.D = _with_state(stylegan2.Discriminator(d2), states["D"], "D")
    return out


# ----------------------------------------------------------------------------- rosinality


def _load_torch_file(p: Path) -> Network:
    # rosinality's train.py stores its argparse.Namespace under "args": harmless data, allowed by name.
    torch.serialization.add_safe_globals([argparse.Namespace])
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not any(k in ckpt for k in ("g", "g_ema", "d")):
        raise NetworkLoadError("torch file is not a rosinality/stylegan2-pytorch checkpoint (no g / g_ema / d)")
    from .rosinality import from_rosinality

    g_cfg, d_cfg, states = from_rosinality(ckpt)
    out = Network(source_format="rosinality")
    for name, state in states.items():
        net = stylegan2.Discriminator(d_cfg) if name == "D" and d_cfg is not None else stylegan2.Generator(g_cfg)
        setattr(out, name, _with_state(net, state, name))
    return out

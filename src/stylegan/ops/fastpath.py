"""Switch between the reference implementation of every op and its faster equivalent.

The reference paths mirror NVIDIA's op order step by step (bit-exact with the official code). The fast
paths compute the same functions with fewer passes over memory; they agree with the reference within
float32 rounding (about 1e-6 relative) and are checked against it, gradients included, by
`tests/ops/test_fast_paths.py`. What they change:

* `bias_act`: a single allocation and in-place activation / gain / clamp; with autograd, a custom
  function that keeps only the output for the backward pass (like the official CUDA kernel).
* `upfirdn2d`: padding folded into the convolution, upsampling as a depthwise transposed convolution
  (no zero insertion), downsampling as a strided convolution (no discarded outputs), prepared filters
  cached.
* `conv2d_resample` on CPU: activations in channels-last layout (oneDNN's faster kernels).
* `modulated_conv2d`: demodulation coefficients from a [N,I] x [I,O] product instead of an [N,O,I,k,k]
  tensor; on CPU the non-fused algorithm (one shared convolution; the grouped convolution of the
  fused one is slower there) and 1x1 convolutions as a batched matrix product. StyleGAN3's
  `modulated_conv2d_sg3`: 1x1 convolutions as a batched matrix product, and in CPU inference one shared
  convolution of the scaled activations.

Fast paths apply to float32 everywhere and, on CUDA, to float16 (bias_act: any dtype, its forward is
bit-exact). NVIDIA's CUDA kernels compute fp16 ops in fp32 internally and round once at the op boundary;
the fast formulations do the same or better, while the reference path rounds after every step. Off CUDA
float16 keeps the reference path, so fp16 rounding matches the official code's CPU path there.
On CUDA the Triton kernels of `stylegan.ops.backend` replace the fast paths where Triton is installed.

Select with `set_fast_paths(False)`, the context manager `with fast_paths(False): ...`, or the
environment variable ``STYLEGAN_FAST_OPS=0`` (read at import).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.autograd.forward_ad  # noqa: F401  (makes torch.autograd.forward_ad importable as an attribute)

_default: bool = os.environ.get("STYLEGAN_FAST_OPS", "1").strip().lower() not in ("0", "false", "no", "off")
_override = threading.local()  # per-thread value set by the `fast_paths` context manager


def fast_paths_enabled() -> bool:
    """True when ops may take their fast paths: the calling thread's `fast_paths` override, else the
    process default (on unless STYLEGAN_FAST_OPS=0)."""
    return getattr(_override, "enabled", _default)


def set_fast_paths(enabled: bool) -> bool:
    """Set the process default: fast paths (True) or reference paths only (False); returns the previous
    default. A `fast_paths` block active in a thread still takes precedence there."""
    global _default
    previous = _default
    _default = bool(enabled)
    return previous


@contextmanager
def fast_paths(enabled: bool = True) -> Iterator[None]:
    """Context manager: `with fast_paths(False): ...` runs the reference paths in this thread only, so
    concurrent forward passes in other threads keep their own setting."""
    previous = getattr(_override, "enabled", None)
    _override.enabled = bool(enabled)
    try:
        yield
    finally:
        if previous is None:
            del _override.enabled
        else:
            _override.enabled = previous


def prefer_cpu_kernels(x: torch.Tensor) -> bool:
    """True when `x` lives where the CPU-specific fast paths pay off (channels-last activations, non-fused
    modulated convolution). One function so that tests can exercise the other branches on CPU."""
    return x.device.type == "cpu"


def cuda_kernels(x: torch.Tensor) -> bool:
    """True when `x` lives where the GPU formulations run (float16 fast paths, Triton kernels, no CPU-cache
    channel groups). One function so that tests can exercise those branches on CPU."""
    return x.device.type == "cuda"


def fast_dtype(x: torch.Tensor) -> bool:
    """True when `x`'s dtype takes the fast formulations: float32 anywhere, float16 / bfloat16 on CUDA."""
    return x.dtype == torch.float32 or (x.dtype in (torch.float16, torch.bfloat16) and cuda_kernels(x))


def under_transform(x: torch.Tensor) -> bool:
    """True for tensors of a torch.func transform (grad, vmap, jvp, ...) or while forward-mode AD is
    active: custom autograd functions and caches keyed by tensor identity stay out of those."""
    if torch.compiler.is_compiling():  # dynamo handles (and cannot trace) these checks
        return False
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    if check is not None and check(x):
        return True
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


# Tensors prepared from a filter (scaled, flipped, cast, expanded into matrices, ...), keyed by the filter's identity
# and version plus what the preparation depends on; entries die with their filter (checked through a weak reference).
_tensor_cache: dict[tuple, tuple[weakref.ref, Any]] = {}
TENSOR_CACHE_MAX = 512


def tensor_cache(f: torch.Tensor, key: tuple, make: Callable[[], Any]) -> Any:
    """`make()` (run without autograd), cached for the filter `f` and `key`; not cached (and computed in the graph)
    when f requires grad, is a transform's tensor, or while compiling. In-place changes of f invalidate the entry."""
    if torch.compiler.is_compiling() or f.requires_grad or under_transform(f):
        return make()
    full_key = (id(f), f._version, torch.is_inference_mode_enabled()) + key
    hit = _tensor_cache.get(full_key)
    if hit is not None and hit[0]() is f:
        return hit[1]
    with torch.no_grad():
        value = make()
    if len(_tensor_cache) >= TENSOR_CACHE_MAX:
        _tensor_cache.clear()
    _tensor_cache[full_key] = (weakref.ref(f), value)
    return value

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

Fast paths apply to float32 (bias_act: any dtype, its forward is bit-exact); float16 computations
keep the reference path so that fp16 rounding matches the official code.

Select with `set_fast_paths(False)`, the context manager `with fast_paths(False): ...`, or the
environment variable ``STYLEGAN_FAST_OPS=0`` (read at import).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from collections.abc import Iterator

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


def prefer_cpu_kernels(x) -> bool:
    """True when `x` lives where the CPU-specific fast paths pay off (channels-last activations, non-fused
    modulated convolution). One function so that tests can exercise the other branches on CPU."""
    return x.device.type == "cpu"


def under_transform(x) -> bool:
    """True for tensors of a torch.func transform (grad, vmap, jvp, ...) or while forward-mode AD is
    active: custom autograd functions and caches keyed by tensor identity stay out of those."""
    if torch.compiler.is_compiling():  # dynamo handles (and cannot trace) these checks
        return False
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    if check is not None and check(x):
        return True
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0

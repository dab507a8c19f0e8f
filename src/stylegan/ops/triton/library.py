"""Shared helpers of the Triton ops: registration as torch ops and small host-side utilities."""

from __future__ import annotations

from collections.abc import Callable

import torch

NAMESPACE = "stylegan"


def define(name: str, fake: Callable) -> Callable:
    """Decorator: register the function as the torch op ``stylegan::name`` (schema from its type hints) with the
    shape function `fake` for tracing."""

    def wrap(fn: Callable) -> Callable:
        op = torch.library.custom_op(f"{NAMESPACE}::{name}", fn, mutates_args=())
        op.register_fake(fake)
        return op

    return wrap


def grid_1d(n: int) -> tuple[int]:
    """Launch grid of `n` programs along axis 0 (the axis without a 65535 limit)."""
    return (max(int(n), 1),)


def next_pow2(n: int, at_least: int = 16) -> int:
    """Smallest power of two >= max(n, at_least) (tl.dot needs power-of-two blocks of at least 16)."""
    p = at_least
    while p < n:
        p *= 2
    return p

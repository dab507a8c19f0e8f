"""upfirdn2d's autograd function (backward = upfirdn2d again) against the reference path in float64.

Values, first- and second-order gradients for every up/down/padding/flip case, plus the property the function
exists for: a double backward (R1, path length) runs no convolution backward at all. The float16 formulations
taken on CUDA are exercised on CPU by patching `fastpath.cuda_kernels`.
"""

from __future__ import annotations

import importlib
import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import stylegan.ops as ops
from stylegan.ops import backend, fastpath

U = importlib.import_module("stylegan.ops.upfirdn2d")

CASES = [
    # up, down, padding
    (1, 1, (0, 0, 0, 0)),
    (1, 1, (2, 1, 2, 1)),
    (1, 1, (-1, 2, 1, -2)),
    (1, 2, (1, 1, 1, 1)),
    (1, 2, (2, 1, 2, 1)),
    (1, 3, (2, 2, 1, 1)),
    (1, 4, (6, -2, 0, 3)),
    (2, 1, (2, 1, 2, 1)),
    (2, 1, (0, -1, 1, 0)),
    (2, 1, (4, 4, 4, 4)),
    (3, 1, (2, 2, 1, 1)),
    (4, 1, (-3, 5, 2, -1)),
    (2, 2, (2, 1, 2, 1)),
    ((2, 1), (1, 2), (1, 2, 0, 1)),
]


def _filter(separable: bool) -> torch.Tensor:
    f = ops.setup_filter([1, 3, 2, 1, 2], separable=separable)
    return f + 0.05 * torch.rand(f.shape, generator=torch.Generator().manual_seed(3))  # asymmetric: flips matter


def _grads(fn, x: torch.Tensor, seed: int = 5):
    """Output, gradient of <y, gy> and gradient of the R1-like penalty ||grad||² (second order)."""
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    (g,) = torch.autograd.grad(y, x, gy, create_graph=True)
    penalty = (g.square() * torch.linspace(0.5, 1.5, g.numel(), dtype=g.dtype).reshape(g.shape)).sum()
    (gg,) = torch.autograd.grad(penalty, x, allow_unused=True) if penalty.requires_grad else (None,)
    return y, g, gg


@pytest.mark.parametrize("up,down,padding", CASES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("separable", [False, True])
def test_function_matches_reference_float64(up, down, padding, flip, separable):
    f = _filter(separable)
    upt, downt = U.parse_scaling(up), U.parse_scaling(down)
    x = torch.randn([2, 3, 7, 6], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fn = lambda x: U._upfirdn2d_dispatch(x, f, upt, downt, padding, flip, 1.3)  # noqa: E731
    ref = lambda x: U._upfirdn2d_ref(x, f, up, down, padding, flip, 1.3)  # noqa: E731
    y, g, gg = _grads(fn, x)
    assert type(y.grad_fn).__name__ == "_UpFirDn2dBackward"
    y_r, g_r, gg_r = _grads(ref, x)
    torch.testing.assert_close(y, y_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_r, rtol=1e-12, atol=1e-12)
    if gg_r is None:  # the penalty's gradient vanishes for a linear op: both say so
        assert gg is None or gg.abs().max() == 0
    else:
        torch.testing.assert_close(gg, gg_r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up,down,padding", [CASES[2], CASES[6], CASES[11], CASES[13]])
def test_gradgradcheck(up, down, padding):
    f = _filter(False)
    upt, downt = U.parse_scaling(up), U.parse_scaling(down)
    x = torch.randn([1, 2, 7, 6], generator=torch.Generator().manual_seed(6), dtype=torch.float64, requires_grad=True)
    fn = lambda x: U._upfirdn2d_dispatch(x, f, upt, downt, padding, True, 0.7)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("up,down,padding", [(1, 1, (2, 1, 2, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1))])
def test_public_op_takes_the_function_and_double_backward_runs_no_convolution_backward(up, down, padding):
    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    f = ops.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 4, 8, 8], generator=torch.Generator().manual_seed(7), requires_grad=True)
    with ops.fast_paths(True):
        y = ops.upfirdn2d(x, f, up=up, down=down, padding=padding)
        assert type(y.grad_fn).__name__ == "_UpFirDn2dBackward"
        (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        with Ops() as mode:
            torch.autograd.grad(g.square().sum(), x)
    assert "convolution" in "".join(mode.names)  # the check sees the convolutions it runs
    assert not [n for n in mode.names if "convolution_backward" in n], mode.names


def test_filter_requiring_grad_and_no_graph_skip_the_function():
    x = torch.randn([1, 2, 6, 6], requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])
    with ops.fast_paths(True):
        assert type(ops.upfirdn2d(x, f.clone().requires_grad_(True), padding=1).grad_fn).__name__ != "_UpFirDn2dBackward"
        with torch.no_grad():
            assert ops.upfirdn2d(x, f, padding=1).grad_fn is None
    with ops.fast_paths(False):
        assert type(ops.upfirdn2d(x, f, padding=1).grad_fn).__name__ != "_UpFirDn2dBackward"


@pytest.mark.parametrize("up,down,padding", [CASES[1], CASES[3], CASES[7], CASES[9], CASES[12]])
def test_float16_on_the_cuda_branch(monkeypatch, up, down, padding):
    """On CUDA float16 takes the fast formulations (and the function); on CPU it keeps the reference path.
    Both agree with float64 to float16 precision."""
    f = ops.setup_filter([1, 3, 3, 1])
    x64 = torch.randn([2, 3, 8, 7], generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    y64, g64, _ = _grads(lambda x: U._upfirdn2d_ref(x, f, up, down, padding, False, 1.0), x64)
    monkeypatch.setattr(backend, "_requested", "torch")  # the PyTorch formulations, not the Triton kernel
    for cuda in (False, True):
        monkeypatch.setattr(fastpath, "cuda_kernels", lambda x, cuda=cuda: cuda)
        x = x64.half().requires_grad_(True)
        with ops.fast_paths(True):
            y = ops.upfirdn2d(x, f, up=up, down=down, padding=padding)
        assert (type(y.grad_fn).__name__ == "_UpFirDn2dBackward") == cuda
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        (g,) = torch.autograd.grad(y, x, gy.half())
        for a, r in ((y, y64), (g, g64)):
            assert a.dtype == torch.float16
            assert (a.double() - r).abs().max() <= 2e-3 * r.abs().max()


def test_transposed_padding_gives_the_input_size():
    f = ops.setup_filter([1, 2, 3, 2, 1], separable=True)
    for (up, down, padding), h, w in itertools.product(CASES, (9, 12), (10, 13)):
        upt, downt = U.parse_scaling(up), U.parse_scaling(down)
        y = ops.upfirdn2d(torch.zeros(1, 1, h, w), f, up=up, down=down, padding=padding)
        p = U.transposed_padding(f, upt, downt, padding, (h, w), tuple(y.shape[2:]))
        assert ops.upfirdn2d(y, f, up=downt, down=upt, padding=p).shape[2:] == (h, w)

"""filtered_lrelu fast path (per-axis resampling matrices) against the reference path: forward and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from stylegan.ops import design_lowpass_filter, fast_paths, filtered_lrelu
import importlib

flrelu_module = importlib.import_module("stylegan.ops.filtered_lrelu")


CASES = [
    # up, down, padding, fu taps, fd taps, radial fd, clamp, slope, gain, flip, size (h, w)
    (2, 2, [9, 8, 9, 8], 12, 12, False, 256.0, 0.2, math.sqrt(2), False, (9, 10)),  # SG3 layer
    (4, 2, [-6, -9, -6, -9], 24, 12, False, 256.0, 0.2, math.sqrt(2), False, (16, 16)),  # SG3 resolution step
    (2, 2, [-11, -12, -11, -12], 12, 12, False, 256.0, 0.2, math.sqrt(2), False, (28, 28)),  # SG3 crop to the image
    (2, 2, [9, 8, 9, 8], 12, 12, True, 256.0, 0.2, math.sqrt(2), False, (9, 9)),  # config R: radial fd
    (2, 4, [20, 19, 18, 21], 12, 24, True, 0.5, 0.2, math.sqrt(2), True, (7, 6)),
    (2, 2, [-1, 6, 9, -2], 6, 6, False, None, 0.0, 1.5, True, (5, 8)),
    (3, 1, [2, 1, 0, 3], 9, 1, False, None, 0.2, 1.0, False, (6, 5)),  # no down filter, odd up
    (1, 2, [4, 3, 2, 5], 1, 8, False, None, 0.2, 1.0, False, (9, 7)),  # no up filter
    (1, 1, [0, 0, 0, 0], 1, 1, False, 0.3, 1.0, 1.0, False, (4, 4)),  # ToRGB: bias + clamp only
    (1, 1, [1, 2, 0, 1], 1, 1, False, None, 0.2, 1.0, False, (4, 5)),  # padding without filters
]


def _inputs(nu, nd, radial, up, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, *size], generator=g) * 2
    b = torch.randn([3], generator=g)
    fu = design_lowpass_filter(nu, cutoff=2, width=3, fs=4 * max(up, 2))
    fd = design_lowpass_filter(nd, cutoff=2, width=3, fs=4 * max(up, 2), radial=radial)
    return x, b, fu, fd


def _run(fast, x, b, fu, fd, kw):
    x = x.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    with fast_paths(fast):
        y = filtered_lrelu(x, fu, fd, b, **kw)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        gx, gb = torch.autograd.grad((y * g).sum(), [x, b])
    return y.detach(), gx, gb


@pytest.mark.parametrize("up,down,padding,nu,nd,radial,clamp,slope,gain,flip,size", CASES)
def test_fast_matches_reference(up, down, padding, nu, nd, radial, clamp, slope, gain, flip, size):
    x, b, fu, fd = _inputs(nu, nd, radial, up, size)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    ref = _run(False, x, b, fu, fd, kw)
    fast = _run(True, x, b, fu, fd, kw)
    with torch.no_grad(), fast_paths(True):  # the in-place (no graph) branch
        y_nograd = filtered_lrelu(x, fu, fd, b, **kw)
    x_before = x.clone()
    for r, f in zip(ref + (ref[0],), fast + (y_nograd,)):
        assert r.shape == f.shape
        scale = r.abs().max().item() + 1e-6
        assert (r - f).abs().max().item() <= 1e-5 * scale, ((r - f).abs().max().item(), scale)
    assert torch.equal(x, x_before)  # the input is never modified


def test_2d_up_filter_and_no_grad_cache():
    """A 2-D up filter takes upfirdn2d; repeated no-grad calls reuse (and agree with) cached matrices."""
    x, b, fu, fd = _inputs(12, 12, False, 2, (6, 7))
    fu2 = torch.outer(fu, fu)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=256.0)
    with torch.no_grad():
        with fast_paths(False):
            ref = filtered_lrelu(x, fu2, fd, b, **kw)
        with fast_paths(True):
            y1 = filtered_lrelu(x, fu2, fd, b, **kw)
            y2 = filtered_lrelu(x, fu, fd, b, **kw)
            n = len(flrelu_module._matrix_cache)
            y3 = filtered_lrelu(x, fu, fd, b, **kw)
            assert len(flrelu_module._matrix_cache) == n
    for y in (y1, y2, y3):
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y2, y3, rtol=0, atol=0)


def test_reference_path_when_disabled(monkeypatch):
    """With fast paths off the matrices are never built."""
    x, b, fu, fd = _inputs(12, 12, False, 2, (6, 6))
    called = []
    monkeypatch.setattr(flrelu_module, "_filtered_lrelu_fast", lambda *a: called.append(1))
    with fast_paths(False), torch.no_grad():
        filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 8, 9, 8])
    assert not called


@pytest.mark.parametrize("case", [0, 1, 3, 5])
@pytest.mark.parametrize("with_bias", [True, False])
def test_inference_channel_groups_match_the_reference(monkeypatch, case, with_bias):
    """Without autograd, large inputs go through in groups of channels; tiny groups here (1 and 2 channels)."""
    up, down, padding, nu, nd, radial, clamp, slope, gain, flip, size = CASES[case]
    x, b, fu, fd = _inputs(nu, nd, radial, up, size)
    x = torch.cat([x, x.flip(1)], dim=1)  # 6 channels
    b = torch.cat([b, -b]) if with_bias else None
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    with torch.no_grad(), fast_paths(False):
        ref = filtered_lrelu(x, fu, fd, b, **kw)
    n, c, h, w = x.shape
    per_channel = n * (h * up + padding[2] + padding[3] - nu + 1) * (w * up + padding[0] + padding[1] - nu + 1)
    for group in (1, 2):
        monkeypatch.setattr(flrelu_module, "_CHUNK_ELEMENTS", per_channel * group)
        x_before = x.clone()
        with torch.no_grad(), fast_paths(True):
            y = filtered_lrelu(x, fu, fd, b, **kw)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)
        assert torch.equal(x, x_before)


# ----------------------------------------------------------------------------- the branches taken on CUDA


@pytest.fixture
def cuda_branch(monkeypatch):
    """The PyTorch CUDA formulations on CPU tensors (backend 'torch': no Triton): float16 fast path,
    [.., k] @ [k, cols] products, no channel groups."""
    from stylegan.ops import backend, fastpath

    monkeypatch.setattr(backend, "_requested", "torch")
    monkeypatch.setattr(fastpath, "cuda_kernels", lambda x: True)
    monkeypatch.setattr(fastpath, "prefer_cpu_kernels", lambda x: False)


def _float64_reference(x, b, fu, fd, kw, gy):
    x = x.double().requires_grad_(True)
    b = b.double().requires_grad_(True)
    with fast_paths(False):
        y = filtered_lrelu(x, fu, fd, b, **kw)
    gx, gb = torch.autograd.grad(y, [x, b], gy.double())
    return y.detach(), gx, gb


@pytest.mark.parametrize("case", [0, 1, 3, 4, 5, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_branch_against_float64(cuda_branch, case, dtype):
    """float32 within 1e-5 and float16 within float16 precision of the float64 reference, gradients included
    (the float16 reference path itself is about 1e-3 off there)."""
    up, down, padding, nu, nd, radial, clamp, slope, gain, flip, size = CASES[case]
    x, b, fu, fd = _inputs(nu, nd, radial, up, size)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    xx, bb = x.to(dtype).requires_grad_(True), b.to(dtype).requires_grad_(True)
    with fast_paths(True):
        y = filtered_lrelu(xx, fu, fd, bb, **kw)
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        gx, gb = torch.autograd.grad(y, [xx, bb], gy)
        with torch.no_grad():
            y_nograd = filtered_lrelu(x.to(dtype), fu, fd, b.to(dtype), **kw)
    assert y.is_contiguous() and y.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 4e-3
    y_ref, gx_ref, gb_ref = _float64_reference(xx, bb, fu, fd, kw, gy)
    for a, r in ((y, y_ref), (gx, gx_ref), (gb, gb_ref), (y_nograd, y_ref)):
        assert a.dtype == dtype
        err = (a.double() - r).abs().max() / r.abs().max()
        assert err <= tol, err


def test_no_channel_groups_on_the_cuda_branch(cuda_branch, monkeypatch):
    x, b, fu, fd = _inputs(12, 12, False, 2, (9, 10))
    monkeypatch.setattr(flrelu_module, "_CHUNK_ELEMENTS", 1)
    calls = []
    original = flrelu_module._resample_separable
    monkeypatch.setattr(flrelu_module, "_resample_separable", lambda *a: calls.append(1) or original(*a))
    with torch.no_grad(), fast_paths(True):
        filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 8, 9, 8])
    assert len(calls) == 2  # one up and one down resampling for all channels at once


@pytest.mark.parametrize("branch", ["cpu", "cuda"])
@pytest.mark.parametrize("grad", [False, True])
def test_traces_into_one_graph(request, branch, grad):
    """torch.compile sees one graph: numpy scalars (StyleGAN3 passes gain=np.sqrt(2)) never reach the matrix
    cache keys and no inference-mode query runs while compiling."""
    import numpy as np

    if branch == "cuda":
        request.getfixturevalue("cuda_branch")
    x, b, fu, fd = _inputs(12, 12, False, 2, (9, 10))
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], slope=0.2, clamp=256.0)
    fn = torch.compile(lambda x, b: filtered_lrelu(x, fu, fd, b, gain=np.sqrt(2), **kw), backend="eager", fullgraph=True)
    kw["gain"] = np.sqrt(2)
    x = x.requires_grad_(grad)
    with fast_paths(True), torch.set_grad_enabled(grad):
        y = fn(x, b)
        with fast_paths(False):
            ref = filtered_lrelu(x, fu, fd, b, **kw)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad(), fast_paths(True):
        filtered_lrelu(x, fu, fd, b, **kw)
    assert all(type(v) in (int, float, bool, type(None), torch.dtype, torch.device) for key in flrelu_module._matrix_cache
               for v in key), list(flrelu_module._matrix_cache)

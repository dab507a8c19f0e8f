"""Every Triton kernel against the reference path in float64, run by Triton's interpreter on CPU tensors.

tests/conftest.py sets TRITON_INTERPRET=1 before the kernels are defined. The cases are the ones the networks use:
upfirdn2d's are recorded from StyleGAN2 generators and discriminators (every architecture, forward, backward and
R1's double backward), filtered_lrelu's come from `synthesis_schedule` (StyleGAN3-T/R) and StyleGAN-XL's growth function
(`stylegan_xl.history_layers`: growth layers up to x16), plus general up/down/padding/filter
combinations, borders and negative padding. float32 must match within 1e-5 of the largest reference magnitude,
float16 within float16 precision; forward, backward and (where training differentiates twice) double backward.

``STYLEGAN_TEST_DEVICE=cuda TRITON_INTERPRET=0`` runs the same cases compiled on a GPU (benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import subprocess
import sys
import warnings

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (pip install triton; Linux only)")

import stylegan.ops as ops  # noqa: E402
from stylegan.ops import backend, fastpath  # noqa: E402
from stylegan.ops.filter_design import design_lowpass_filter  # noqa: E402

DEVICE = torch.device(os.environ.get("STYLEGAN_TEST_DEVICE", "cpu"))
on_cpu_only = pytest.mark.skipif(DEVICE.type != "cpu", reason="switch logic, checked on CPU")
U = importlib.import_module("stylegan.ops.upfirdn2d")
FL = importlib.import_module("stylegan.ops.filtered_lrelu")
# Relative to the largest reference magnitude. float16 gradients: the float16 reference path and the PyTorch fast
# path are as far from float64 (slopes and clamps decided on rounded values, long filters).
TOL = {torch.float32: (1e-5, 1e-5), torch.float16: (4e-3, 1e-2)}


@pytest.fixture(autouse=True)
def triton_backend(monkeypatch):
    """Backend 'triton'. On CPU: the interpreter, with the CUDA branches (float16 fast paths) patched on; on CUDA:
    compiled kernels, TF32 off (the PyTorch paths they are compared with must compute in float32)."""
    monkeypatch.setattr(backend, "_requested", "triton")
    if DEVICE.type == "cpu":
        assert backend.interpreter_active(), "tests/conftest.py must set TRITON_INTERPRET=1"
        monkeypatch.setattr(fastpath, "cuda_kernels", lambda x: True)  # float16 takes the fast (here: Triton) paths
        monkeypatch.setattr(fastpath, "prefer_cpu_kernels", lambda x: False)
    else:
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    kernels, reason = backend.triton_kernels()
    assert kernels is not None, reason


def _rand(shape, seed, scale=1.0, dtype=torch.float64):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    return t.to(device=DEVICE, dtype=dtype)


def _rel(a: torch.Tensor, r: torch.Tensor) -> float:
    assert a.shape == r.shape, (a.shape, r.shape)
    return ((a.double() - r.double()).abs().max() / r.double().abs().max().clamp_min(1e-30)).item()


def _check(a: torch.Tensor, r: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    assert a.dtype == dtype, (what, a.dtype)
    err, tol = _rel(a, r), TOL[dtype][what != "output"]
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def _run(fn, inputs: list[torch.Tensor], dtype: torch.dtype, fast: bool, second: bool, grid: torch.dtype):
    """fn(*inputs) at `dtype` (fast=True: the kernels; False: reference path): output, input gradients for a random
    output gradient gy and, with `second`, the gradient of <d(gx), w> with respect to gy (double backward). Inputs,
    gy and w hold values of the `grid` dtype, so both paths see the same numbers."""
    leaves = [t.detach().to(grid).to(dtype).requires_grad_(True) for t in inputs]
    with ops.fast_paths(fast):
        y = fn(*leaves)
        gy = _rand(y.shape, 99, dtype=grid).to(dtype).requires_grad_(second)
        grads = torch.autograd.grad(y, leaves, gy, create_graph=second)
        gg = None
        if second:
            w = _rand(grads[0].shape, 100, dtype=grid).to(dtype)
            (gg,) = torch.autograd.grad((grads[0] * w).sum(), gy)
    return y, grads, gg


def _compare(fn, inputs, dtype, second=False, check_kernel=None):
    y, grads, gg = _run(fn, inputs, dtype, True, second, dtype)
    if check_kernel is not None:
        assert check_kernel in type(y.grad_fn).__name__, type(y.grad_fn).__name__
    y_r, grads_r, gg_r = _run(fn, inputs, torch.float64, False, second, dtype)
    _check(y, y_r, dtype, "output")
    for i, (g, g_r) in enumerate(zip(grads, grads_r)):
        _check(g, g_r, dtype, f"gradient {i}")
    if second:
        _check(gg, gg_r, dtype, "double backward")


# ----------------------------------------------------------------------------- bias_act


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize("clamp", [None, 0.7])
@pytest.mark.parametrize("dim,gain", [(1, None), (2, 0.6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_bias_act(act, clamp, dim, gain, dtype):
    x = _rand([2, 5, 6, 7], 1)
    b = _rand([x.shape[dim]], 2, 0.5)
    fn = lambda x, b: ops.bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp)  # noqa: E731
    _compare(fn, [x, b], dtype, second=True, check_kernel="stylegan_bias_act")


def test_bias_act_channels_last_and_without_bias():
    x = _rand([2, 4, 5, 6], 3).float().contiguous(memory_format=torch.channels_last)
    b = _rand([4], 4).float()
    y = ops.bias_act(x, b, act="lrelu", clamp=1.0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    with ops.fast_paths(False):
        torch.testing.assert_close(y, ops.bias_act(x, b, act="lrelu", clamp=1.0), rtol=0, atol=0)
        torch.testing.assert_close(ops.bias_act(x, None, act="relu", gain=2.0), x.relu() * 2, rtol=0, atol=0)
    torch.testing.assert_close(ops.bias_act(x, None, act="relu", gain=2.0), x.relu() * 2, rtol=0, atol=0)


def test_bias_act_other_activations_stay_on_torch():
    x = _rand([2, 3, 4], 5).float().requires_grad_(True)
    assert "stylegan" not in type(ops.bias_act(x, None, act="tanh").grad_fn).__name__


# ----------------------------------------------------------------------------- upfirdn2d


@functools.cache
def sg2_upfirdn2d_calls() -> tuple[tuple, ...]:
    """(filter taps, up, down, padding, flip, gain) of every upfirdn2d call of small StyleGAN2 G and D (orig, skip,
    resnet): forward, backward and R1's double backward, recorded on the PyTorch paths."""
    from stylegan.models.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig
    from stylegan.models.stylegan2 import SynthesisConfig

    calls: dict[tuple, None] = {}
    original = U._upfirdn2d_dispatch

    def spy(x, f, up, down, padding, flip, gain):
        calls[(tuple(f.flatten().tolist()), tuple(f.shape), up, down, padding, flip, gain)] = None
        return original(x, f, up, down, padding, flip, gain)

    U._upfirdn2d_dispatch = spy
    try:
        for arch in ("orig", "skip", "resnet"):
            torch.manual_seed(0)
            G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, mapping=MappingConfig(num_layers=1),
                                          synthesis=SynthesisConfig(channel_base=64, channel_max=8, architecture=arch)))
            D = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=64, channel_max=8, architecture=arch))
            img = G(torch.randn(2, 8))
            D(img).sum().backward()
            real = img.detach().requires_grad_(True)
            (r1,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            r1.square().sum().backward()
    finally:
        U._upfirdn2d_dispatch = original
    return tuple(calls)


GENERAL_UPFIRDN = [
    # taps (None = 1x1), separable, up, down, padding
    ([1, 3, 3, 1], False, (1, 1), (1, 1), (-2, 3, 1, -1)),
    ([1, 2, 3, 2, 1], True, (3, 3), (1, 1), (2, -3, 4, 0)),
    ([1, 2, 5, 2, 1, 1], False, (1, 1), (4, 3), (5, 1, 0, 6)),
    ([2, 1, 3, 4, 1, 3, 2, 5], True, (8, 8), (2, 2), (-5, 9, 3, 3)),
    ([1, 3, 3, 1], True, (2, 1), (1, 2), (0, 1, 2, -1)),
    ([1, 1, 2, 5, 3, 2, 1, 4, 2, 1, 1, 2], True, (1, 1), (8, 8), (4, 7, 7, 4)),
    (None, False, (1, 1), (2, 2), (1, -1, 0, 2)),
]


def _upfirdn_cases():
    cases = [pytest.param(taps, shape, up, down, padding, flip, gain, id=f"sg2-{i}")
             for i, (taps, shape, up, down, padding, flip, gain) in enumerate(sg2_upfirdn2d_calls())]
    for i, (taps, separable, up, down, padding) in enumerate(GENERAL_UPFIRDN):
        if taps is None:
            f = torch.ones([1, 1])
        else:
            f = ops.setup_filter(taps, separable=separable)
            f = f + 0.1 * torch.rand(f.shape, generator=torch.Generator().manual_seed(i))  # asymmetric
        for flip in (False, True):
            cases.append(pytest.param(tuple(f.flatten().tolist()), tuple(f.shape), up, down, padding, flip, 1.7,
                                      id=f"general-{i}-flip{int(flip)}"))
    return cases


def test_recorded_stylegan2_calls_cover_resampling_and_double_backward():
    calls = sg2_upfirdn2d_calls()
    assert {(c[2], c[3]) for c in calls} >= {((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 2))}
    assert any(c[5] for c in calls) and any(not c[5] for c in calls)  # backward passes flip the filter


@pytest.mark.parametrize("taps,shape,up,down,padding,flip,gain", _upfirdn_cases())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_upfirdn2d(taps, shape, up, down, padding, flip, gain, dtype):
    f = torch.tensor(taps, dtype=torch.float32).reshape(shape).to(DEVICE)
    kh, kw = (shape[0], shape[0]) if len(shape) == 1 else shape
    h = max(5, -(-(kh - padding[2] - padding[3] + 2 * down[1]) // up[1]))  # at least 2 outputs per axis
    w = max(6, -(-(kw - padding[0] - padding[1] + 2 * down[0]) // up[0]))
    x = _rand([1, 2, h, w], 7)
    fn = lambda x: ops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)  # noqa: E731
    _compare(fn, [x], dtype, second=True, check_kernel="stylegan_upfirdn2d")


# ----------------------------------------------------------------------------- filtered_lrelu


@functools.cache
def sg3_layers() -> tuple:
    """Distinct filtered_lrelu layer specs of StyleGAN3-T and -R at 256² and of StyleGAN-XL's growth layers (a 16²
    T or R stem grown by each of its up factors, x2 to x16, with 4 or 7 head layers: up 8 and 16 in one layer)."""
    from stylegan.models import stylegan_xl
    from stylegan.models.stylegan3 import SynthesisConfig, stylegan3_config, synthesis_schedule

    specs = [s for name in ("stylegan3-t", "stylegan3-r") for s in synthesis_schedule(256, 3, stylegan3_config(name, 256).synthesis)]
    for radial in (False, True):
        stem = SynthesisConfig(conv_kernel=1 if radial else 3, use_radial_filters=radial)
        for up in stylegan_xl.UP_FACTORS:
            for head_layers in (4, 7):
                history = stylegan_xl.StageHistory(stem=stem, stages=[stylegan_xl.GrowthStage(up, head_layers)])
                specs += [layer.spec() for layer in stylegan_xl.history_layers(history, 3)[0]]
    distinct = {}
    for s in specs:
        if not s.is_torgb:
            distinct.setdefault((s.up_factor, s.down_factor, s.up_taps, s.down_taps, s.down_radial, s.padding), s)
    return tuple(distinct.values())


def _layer_filters(s):
    fu = design_lowpass_filter(s.up_taps, s.in_cutoff, s.in_half_width * 2, s.tmp_sampling_rate)
    fd = design_lowpass_filter(s.down_taps, s.out_cutoff, s.out_half_width * 2, s.tmp_sampling_rate, radial=s.down_radial)
    return fu.to(DEVICE), fd.to(DEVICE)


def _small_input_size(up, down, ku, kd, padding):
    """Smallest input size (>= 4) that leaves at least 3 outputs along both axes: keeps the interpreter fast."""
    n = 4
    while min(n * up + p0 + p1 - ku - kd + 2 + down - 1 for p0, p1 in (padding[:2], padding[2:])) // down < 3:
        n += 1
    return n


def test_layer_specs_include_growth_layers_and_radial_filters():
    specs = sg3_layers()
    assert {s.up_factor for s in specs} >= {2, 4, 8, 16}
    assert any(s.down_radial for s in specs) and any(min(s.padding) < 0 for s in specs)


def _layer_param(i: int):
    s = sg3_layers()[i]
    name = f"{i}-up{s.up_factor}-down{s.down_factor}-taps{s.up_taps}x{s.down_taps}{'-radial' if s.down_radial else ''}"
    return pytest.param(i, id=name, marks=[pytest.mark.slow] if s.up_factor >= 8 else [])  # the interpreter is slow there


@pytest.mark.parametrize("index", [_layer_param(i) for i in range(len(sg3_layers()))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_filtered_lrelu_layers(index, dtype):
    s = sg3_layers()[index]
    fu, fd = _layer_filters(s)
    n = _small_input_size(s.up_factor, s.down_factor, s.up_taps, s.down_taps, s.padding)
    x, b = _rand([1, 2, n, n + 1], 11, 30.0), _rand([2], 12)
    fn = lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=s.up_factor, down=s.down_factor, padding=s.padding,  # noqa: E731
                                         gain=math.sqrt(2), slope=0.2, clamp=64.0)
    _compare(fn, [x, b], dtype, second=dtype == torch.float32, check_kernel="stylegan_filtered_lrelu")


GENERAL_FLRELU = [
    # up, down, padding, fu taps, fd taps, radial fd, clamp, slope, gain, flip
    (1, 1, (1, 2, 0, 3), 3, 4, False, None, 0.2, 1.0, False),
    (1, 2, (4, 3, 2, 5), 1, 8, False, 0.5, 0.0, 1.5, True),
    (3, 1, (2, 1, 0, 3), 9, 1, False, None, 0.2, math.sqrt(2), False),
    (2, 3, (-2, 5, 3, -1), 12, 18, True, 0.8, 0.2, math.sqrt(2), True),
    (1, 4, (9, 8, -3, 10), 1, 24, True, None, 1.0, 1.0, False),
    (8, 8, (20, -4, 11, 9), 48, 48, False, 0.5, 0.2, math.sqrt(2), False),
    (5, 1, (0, 0, 0, 0), 1, 1, False, 0.3, 0.1, 2.0, False),  # no filters: zero insertion only
    (2, 2, (0, 0, 0, 0), 1, 1, False, None, 0.2, 1.0, False),
]


@pytest.mark.parametrize("up,down,padding,nu,nd,radial,clamp,slope,gain,flip", GENERAL_FLRELU)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_filtered_lrelu_general(up, down, padding, nu, nd, radial, clamp, slope, gain, flip, dtype):
    fs = 4 * max(up, down, 2)
    fu = design_lowpass_filter(nu, cutoff=1.5, width=2, fs=fs).to(DEVICE) if nu > 1 else None
    fd = design_lowpass_filter(nd, cutoff=1.5, width=2, fs=fs, radial=radial).to(DEVICE) if nd > 1 else None
    n = _small_input_size(up, down, nu, nd, padding)
    x, b = _rand([1, 2, n + 1, n], 13, 2.0), _rand([2], 14)
    fn = lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain,  # noqa: E731
                                         slope=slope, clamp=clamp, flip_filter=flip)
    _compare(fn, [x, b], dtype, second=dtype == torch.float32, check_kernel="stylegan_filtered_lrelu")


def test_filtered_lrelu_torgb_is_bias_act_and_inference_stores_no_codes(monkeypatch):
    x, b = _rand([1, 3, 5, 5], 15).float(), _rand([3], 16).float()
    y = ops.filtered_lrelu(x.requires_grad_(True), b=b, gain=1.0, slope=1.0, clamp=0.5)
    assert "stylegan_bias_act" in type(y.grad_fn).__name__
    kernel_module = importlib.import_module("stylegan.ops.triton.filtered_lrelu")
    seen = []
    op = kernel_module._flrelu_op
    monkeypatch.setattr(kernel_module, "_flrelu_op", lambda *a: seen.append(a[-1]) or op(*a))
    s = sg3_layers()[0]
    fu, fd = _layer_filters(s)
    with torch.no_grad():
        ops.filtered_lrelu(_rand([1, 2, 6, 6], 17).float(), fu, fd, up=2, down=2, padding=s.padding)
    ops.filtered_lrelu(_rand([1, 2, 6, 6], 17).float().requires_grad_(True), fu, fd, up=2, down=2, padding=s.padding)
    assert seen == [False, True]


# ----------------------------------------------------------------------------- networks, compile, switch


def _sg3_generator(cfg_name: str):
    from stylegan.models.stylegan2 import MappingConfig
    from stylegan.models.stylegan3 import Generator, stylegan3_config

    cfg = stylegan3_config(cfg_name, 16, z_dim=8, w_dim=8, channel_base=64, channel_max=4)
    cfg.mapping = MappingConfig(num_layers=1)
    cfg.synthesis.num_layers = 4  # every kind of layer (up 2 and 4, critical, ToRGB) and fewer of them
    torch.manual_seed(1)
    return Generator(cfg)


def _xl_generator():
    """An 8² stem (4 layers) grown by x4: a growth layer with up 8."""
    from stylegan.models import stylegan_xl
    from stylegan.models.stylegan3 import SynthesisConfig

    history = stylegan_xl.StageHistory(stem_resolution=8, stem=SynthesisConfig(channel_base=128, channel_max=4, num_layers=4),
                                       stages=[stylegan_xl.GrowthStage(4, 3)])
    layers, res = stylegan_xl.history_layers(history, 3)
    assert max(layer.spec().up_factor for layer in layers) == 8
    cfg = stylegan_xl.GeneratorConfig(z_dim=8, w_dim=8, img_resolution=res, history=history,
                                      mapping=stylegan_xl.MappingConfig(num_layers=1), synthesis=stylegan_xl.SynthesisConfig(layers=layers))
    torch.manual_seed(3)
    return stylegan_xl.Generator(cfg)


def _sg2_pair():
    from stylegan.models.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig
    from stylegan.models.stylegan2 import SynthesisConfig

    torch.manual_seed(2)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, mapping=MappingConfig(num_layers=1),
                                  synthesis=SynthesisConfig(channel_base=64, channel_max=8)))
    return G, Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=64, channel_max=8))


@pytest.mark.slow
@pytest.mark.parametrize("net", ["stylegan2", "stylegan3-t", "stylegan3-r", "stylegan-xl"])
def test_networks_match_the_torch_backend(net, monkeypatch):
    """Image, G gradients (and for StyleGAN2 D's R1 double backward) through Triton vs the PyTorch fast paths."""
    z = _rand([1 if net != "stylegan2" else 2, 8], 3).float()
    results = {}
    for name in ("triton", "torch"):
        monkeypatch.setattr(backend, "_requested", name)
        if net == "stylegan2":
            G, D = (m.to(DEVICE) for m in _sg2_pair())
            img = G(z, force_fp32=True)  # float32 on a GPU too: the comparison is at float32 precision
            real = img.detach().requires_grad_(True)
            (r1,) = torch.autograd.grad(D(real, force_fp32=True).sum(), real, create_graph=True)
            D.zero_grad()
            r1.square().sum().backward()
            extra = [p.grad.clone() for p in D.parameters() if p.grad is not None]
        else:
            G, extra = (_xl_generator() if net == "stylegan-xl" else _sg3_generator(net)).to(DEVICE), []
            img = G(z, None, force_fp32=True) if net == "stylegan-xl" else G(z, force_fp32=True)
        grads = torch.autograd.grad(img.square().mean(), list(G.parameters()), allow_unused=True)
        flat = lambda ts: torch.cat([t.flatten() for t in ts if t is not None])  # noqa: E731
        results[name] = [img.detach(), flat(grads)] + ([flat(extra)] if extra else [])
    for what, a, r in zip(("image", "G gradients", "D R1 gradients"), *results.values()):
        assert _rel(a, r) <= 2e-5, (what, _rel(a, r))


def test_ops_trace_into_one_compiled_graph():
    """The ops are torch.library custom ops: AOTAutograd traces them (fake shapes) and their backward passes."""
    s = sg3_layers()[0]
    fu, fd = _layer_filters(s)
    f = ops.setup_filter([1, 3, 3, 1], device=DEVICE)

    def fn(x, b):
        y = ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=s.padding, clamp=64.0)
        y = ops.upfirdn2d(y, f, up=2, padding=[2, 1, 2, 1])
        return ops.bias_act(y, None, act="lrelu").square().sum()

    x, b = _rand([1, 2, 6, 6], 18).float(), _rand([2], 19).float()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    results = []
    for f_ in (compiled, fn):
        xx, bb = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
        loss = f_(xx, bb)
        results.append([loss.detach(), *torch.autograd.grad(loss, [xx, bb])])
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


@on_cpu_only
def test_fast_ops_off_forces_the_reference_path():
    x = _rand([1, 2, 6, 6], 20).float().requires_grad_(True)
    with ops.fast_paths(False):
        y = ops.bias_act(x, torch.zeros(2, device=DEVICE), act="lrelu")
    assert "stylegan" not in type(y.grad_fn).__name__
    assert backend.describe("cpu")["ops"] == {op: "triton" for op in backend.OPS}
    with ops.fast_paths(False):
        assert backend.describe("cpu")["ops"] == {op: "reference" for op in backend.OPS}


@on_cpu_only
def test_missing_triton_on_cuda_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setattr(backend, "_requested", "auto")
    monkeypatch.setattr(backend, "_triton", (None, "ImportError: no triton"))
    monkeypatch.setattr(backend, "_warned", False)
    x = _rand([1, 2, 6, 6], 21).float()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ops.bias_act(x, None, act="lrelu")
        ops.bias_act(x, None, act="lrelu")
    assert sum("Triton kernels unavailable" in str(w.message) for w in caught) == 1
    assert "Triton unavailable" in backend.summary("cuda")
    monkeypatch.setattr(backend, "_requested", "torch")
    assert not backend.use_triton(x)


@on_cpu_only
def test_backend_variable_and_import_without_triton():
    """STYLEGAN_BACKEND is validated; the library imports and runs where Triton cannot be imported."""
    code = ("import sys; sys.modules['triton'] = None\n"
            "import torch, stylegan.ops as ops\nfrom stylegan.ops import backend\n"
            "d = backend.describe('cuda'); assert d['triton'] is None and 'halted' in d['triton_unavailable'], d\n"
            "x = torch.randn(1, 2, 8, 8)\n"
            "y = ops.filtered_lrelu(x, torch.ones(4) / 4, torch.ones(4) / 4, up=2, down=2, padding=3)\n"
            "print(backend.get_backend(), tuple(y.shape))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, STYLEGAN_BACKEND="torch"))
    assert out.returncode == 0 and out.stdout.strip() == "torch (1, 2, 8, 8)", out.stderr
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, STYLEGAN_BACKEND="cuda-please"))
    assert bad.returncode != 0 and "STYLEGAN_BACKEND must be one of auto, triton, torch; got 'cuda-please'" in bad.stderr

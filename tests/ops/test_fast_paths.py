"""Fast op paths against the reference paths (`stylegan.ops.fast_paths`), values and gradients.

Every fast path must compute the reference function within 1e-5 relative in float32 (the error
measured against the largest magnitude of the reference result), first and second order gradients
included. The CPU-specific branches (channels-last activations, non-fused modulated convolution) and
the other devices' branches (fused modulated convolution) are both exercised on CPU by patching
`fastpath.prefer_cpu_kernels`.
"""

from __future__ import annotations

import importlib
import itertools

import pytest
import torch

import stylegan.ops as ops
from stylegan.ops import fastpath

# The package re-exports functions under the modules' names, so import the modules themselves.
bias_act_module = importlib.import_module("stylegan.ops.bias_act")
upfirdn2d_module = importlib.import_module("stylegan.ops.upfirdn2d")

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _restore_switch():
    previous = ops.fast_paths_enabled()
    yield
    ops.set_fast_paths(previous)


@pytest.fixture(params=["cpu-kernels", "other-device-kernels"])
def device_branch(request, monkeypatch):
    """Run a test once with the CPU branches and once with the branches taken on CUDA / MPS."""
    if request.param == "other-device-kernels":
        monkeypatch.setattr(fastpath, "prefer_cpu_kernels", lambda x: False)
    return request.param


def _rand(shape, seed, scale=1.0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g) * scale
    return t.requires_grad_(requires_grad)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    denom = b.detach().abs().max().item()
    return (a.detach() - b.detach()).abs().max().item() / max(denom, 1e-30)


def _assert_close(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL, what: str = "") -> None:
    err = _rel_err(a, b)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def _run_both(fn, inputs: list[torch.Tensor], grad_seed: int = 123, second_order: bool = False):
    """fn(*inputs) with fast and reference paths: outputs, input gradients and (optionally) the
    gradients of a gradient-norm penalty (double backward), for each path."""
    results = {}
    for fast in (True, False):
        leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
        with ops.fast_paths(fast):
            y = fn(*leaves)
            gy = _rand(y.shape, grad_seed)
            diff = [t for t in leaves if t.requires_grad]
            grads = torch.autograd.grad(y, diff, gy, create_graph=second_order)
            second = None
            if second_order:
                penalty = sum(g.square().sum() for g in grads)
                if penalty.requires_grad:
                    second = torch.autograd.grad(penalty, diff, allow_unused=True)
                else:  # the gradient does not depend on the inputs (a linear function)
                    second = [None] * len(diff)
        results[fast] = (y, grads, second)
    return results[True], results[False]


def _compare(fast, ref, what: str, rtol: float = RTOL) -> None:
    (y_f, g_f, s_f), (y_r, g_r, s_r) = fast, ref
    _assert_close(y_f, y_r, rtol, f"{what} output")
    for i, (a, b) in enumerate(zip(g_f, g_r)):
        _assert_close(a, b, rtol, f"{what} grad[{i}]")
    if s_r is not None:
        for i, (a, b) in enumerate(zip(s_f, s_r)):
            if b is None:
                assert a is None or a.abs().max() == 0, f"{what} second-order grad[{i}] should vanish"
            else:
                _assert_close(a, b, rtol, f"{what} second-order grad[{i}]")


# ----------------------------------------------------------------------------- switch


def test_switch_and_context_manager():
    ops.set_fast_paths(True)
    assert ops.fast_paths_enabled()
    with ops.fast_paths(False):
        assert not ops.fast_paths_enabled()
        with ops.fast_paths(True):
            assert ops.fast_paths_enabled()
        assert not ops.fast_paths_enabled()
    assert ops.fast_paths_enabled()
    assert ops.set_fast_paths(False) is True
    assert ops.set_fast_paths(True) is False


def test_context_manager_is_per_thread():
    """A `fast_paths(False)` block (as an fp16-off-CUDA network's forward holds) leaves other threads alone."""
    import threading

    ops.set_fast_paths(True)
    inside, release, seen = threading.Event(), threading.Event(), []

    def hold_reference_paths():
        with ops.fast_paths(False):
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold_reference_paths)
    worker.start()
    assert inside.wait(5)
    seen.append(ops.fast_paths_enabled())
    with ops.fast_paths(False):
        release.set()
        worker.join(5)
        seen.append(ops.fast_paths_enabled())  # the other thread's exit must not switch this thread back
    seen.append(ops.fast_paths_enabled())
    assert seen == [True, False, True]


# ----------------------------------------------------------------------------- bias_act


@pytest.fixture
def always_autograd_function(monkeypatch):
    """Use the custom autograd function even for the small tensors of these tests."""
    monkeypatch.setattr(bias_act_module, "_FAST_GRAD_MIN_NUMEL", 0)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize("clamp", [None, 0.5])
@pytest.mark.parametrize("gain", [None, 0.7])
@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_act_forward_bit_exact(act, clamp, gain, with_bias):
    x = _rand([3, 5, 4, 4], 0)
    b = _rand([5], 1) if with_bias else None
    with ops.fast_paths(True):
        y_fast = ops.bias_act(x, b, act=act, gain=gain, clamp=clamp)
    with ops.fast_paths(False):
        y_ref = ops.bias_act(x, b, act=act, gain=gain, clamp=clamp)
    assert torch.equal(y_fast, y_ref)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize("clamp", [None, 0.8])
@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("second_order", [False, True])
@pytest.mark.parametrize("gain", [None, 1.0])
def test_bias_act_gradients(always_autograd_function, act, clamp, dim, second_order, gain):
    x = _rand([4, 6, 5, 3], 2, requires_grad=True)
    b = _rand([x.shape[dim]], 3, scale=0.3, requires_grad=True)
    fn = lambda x, b: ops.bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp)  # noqa: E731
    fast, ref = _run_both(fn, [x, b], second_order=second_order)
    _compare(fast, ref, f"bias_act {act} clamp={clamp}")


def test_bias_act_takes_the_autograd_function(always_autograd_function):
    x = _rand([2, 3, 4, 4], 4, requires_grad=True)
    with ops.fast_paths(True):
        y = ops.bias_act(x, torch.zeros(3), act="lrelu", clamp=1.0)
    assert type(y.grad_fn).__name__ == "_BiasActBackward"


def test_bias_act_fast_does_not_modify_input():
    x = _rand([2, 3, 4, 4], 5)
    x0 = x.clone()
    for requires_grad in (False, True):
        xx = x.clone().requires_grad_(requires_grad)
        with ops.fast_paths(True):
            ops.bias_act(xx, None, act="lrelu", gain=2.0, clamp=0.5)
        assert torch.equal(xx.detach(), x0)


def test_bias_act_linear_identity_returns_input_like_reference():
    x = _rand([2, 3], 6)
    with ops.fast_paths(True):
        assert ops.bias_act(x) is x


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "elu", "selu", "softplus", "swish"])
def test_bias_act_other_activations_use_reference(act):
    x = _rand([2, 3, 4], 7, requires_grad=True)
    b = _rand([3], 8, requires_grad=True)
    fast, ref = _run_both(lambda x, b: ops.bias_act(x, b, act=act, clamp=1.0), [x, b], second_order=True)
    _compare(fast, ref, act, rtol=0)


def test_bias_act_gradgradcheck_float64(always_autograd_function):
    # Away from the kinks (|x + b| > 0.05) and the clamp boundary.
    x = (_rand([2, 3, 3, 3], 9).double() * 0.5)
    x = (x + 0.1 * x.sign()).requires_grad_(True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with ops.fast_paths(True):
        fn = lambda x, b: ops.bias_act(x, b, act="lrelu", gain=1.3, clamp=2.0)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.func's own use of torch.jit.script
def test_bias_act_under_torch_func_and_forward_ad(always_autograd_function):
    """Transforms and forward-mode AD bypass the custom autograd function and still differentiate."""
    import torch.autograd.forward_ad as fwAD

    x = _rand([2, 3, 4, 4], 17)
    b = _rand([3], 18)
    t = _rand([2, 3, 4, 4], 19)

    def f(x):
        return ops.bias_act(x, b, act="lrelu", clamp=0.5).square().sum()

    results = {}
    for fast in (True, False):
        with ops.fast_paths(fast):
            g = torch.func.grad(f)(x)
            _, tangent = torch.func.jvp(f, (x,), (t,))
            with fwAD.dual_level():
                y = ops.bias_act(fwAD.make_dual(x.clone().requires_grad_(True), t), b, act="lrelu", clamp=0.5)
                fw_tangent = fwAD.unpack_dual(y).tangent
        results[fast] = (g, tangent, fw_tangent)
    for a, r in zip(results[True], results[False]):
        _assert_close(a, r, what="torch.func / forward AD")


# ----------------------------------------------------------------------------- upfirdn2d

UPFIRDN_CASES = [
    # up, down, padding, taps, separable
    (1, 1, 0, [1, 3, 3, 1], False),
    (1, 1, [2, 1, 2, 1], [1, 3, 3, 1], False),
    (1, 1, [1, 2, 0, 3], [1, 2, 1], False),
    (1, 1, [-1, 2, 1, -2], [1, 3, 3, 1], False),
    (1, 2, [1, 1, 1, 1], [1, 3, 3, 1], False),
    (1, 2, [2, 1, 2, 1], [1, 3, 3, 1], False),
    (1, 3, [2, 2, 1, 1], [1, 2, 3, 2, 1], False),
    (2, 1, [2, 1, 2, 1], [1, 3, 3, 1], False),  # upsample2d's padding
    (2, 1, [1, 1, 1, 1], [1, 3, 3, 1], False),
    (2, 1, [3, 0, 2, 0], [1, 3, 3, 1], False),
    (2, 1, [0, -1, 1, 0], [1, 3, 3, 1], False),
    (2, 1, [4, 4, 4, 4], [1, 3, 3, 1], False),  # beyond the transposed conv's support: reference
    (3, 1, [2, 2, 1, 1], [1, 2, 3, 2, 1], False),
    (2, 2, [2, 1, 2, 1], [1, 3, 3, 1], False),
    (1, 1, [4, 3, 4, 3], [1, 3, 5, 7, 7, 5, 3, 1], True),
    (1, 2, [4, 3, 4, 3], [1, 3, 5, 7, 7, 5, 3, 1], True),
    (2, 1, [5, 4, 5, 4], [1, 3, 5, 7, 7, 5, 3, 1], True),
    (1, 1, [1, 0, 0, 1], None, False),
    (1, 2, [-1, 1, 0, 0], None, False),
]


@pytest.mark.parametrize("up,down,padding,taps,separable", UPFIRDN_CASES)
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d(up, down, padding, taps, separable, flip_filter):
    x = _rand([2, 3, 9, 7], 10, requires_grad=True)
    if taps is None:
        f = None
    else:
        f = ops.setup_filter(taps, separable=separable)
        g = torch.Generator().manual_seed(11)
        f = f + 0.1 * torch.rand(f.shape, generator=g)  # asymmetric, so flips matter
    fn = lambda x: ops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.7)  # noqa: E731
    fast, ref = _run_both(fn, [x])
    _compare(fast, ref, f"upfirdn2d up={up} down={down} pad={padding}")


@pytest.mark.parametrize("op", ["filter2d", "upsample2d", "downsample2d"])
def test_resampling_helpers(op):
    x = _rand([2, 4, 8, 8], 12, requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])
    fast, ref = _run_both(lambda x: getattr(ops, op)(x, f), [x], second_order=True)
    _compare(fast, ref, op)


def test_upfirdn2d_non_uniform_scaling():
    x = _rand([1, 2, 6, 5], 13, requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])
    for up, down in [((2, 1), 1), (1, (1, 2)), ((2, 3), (1, 2))]:
        fast, ref = _run_both(lambda x, up=up, down=down: ops.upfirdn2d(x, f, up=up, down=down, padding=[2, 1, 1, 2]), [x])
        _compare(fast, ref, f"up={up} down={down}")


def test_filter_cache_follows_in_place_changes():
    x = _rand([1, 2, 6, 6], 14)
    f = ops.setup_filter([1, 3, 3, 1])
    with ops.fast_paths(True):
        y0 = ops.upfirdn2d(x, f, padding=1)
        f.mul_(2)  # e.g. load_state_dict copying into the buffer
        y1 = ops.upfirdn2d(x, f, padding=1)
    torch.testing.assert_close(y1, 2 * y0)


def test_filter_requiring_grad_gets_its_gradient():
    x = _rand([1, 2, 6, 6], 15)
    f = ops.setup_filter([1, 3, 3, 1]).requires_grad_(True)
    grads = []
    for fast in (True, False):
        f.grad = None
        with ops.fast_paths(fast):
            ops.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]).square().sum().backward()
        grads.append(f.grad.clone())
    _assert_close(grads[0], grads[1], what="filter grad")


def test_filter_cache_is_bounded():
    x = _rand([1, 2, 5, 5], 16)
    with ops.fast_paths(True):
        for _ in range(upfirdn2d_module._WEIGHT_CACHE_MAX + 10):
            ops.upfirdn2d(x, ops.setup_filter([1, 2, 1]), padding=1)
    assert len(upfirdn2d_module._weight_cache) <= upfirdn2d_module._WEIGHT_CACHE_MAX


# ----------------------------------------------------------------------------- conv2d_resample

CONV_CASES = [
    # kernel, up, down, padding, groups
    (3, 1, 1, 1, 1),
    (3, 1, 1, 0, 1),
    (3, 1, 1, [1, 0, 2, 1], 1),
    (3, 2, 1, 1, 1),
    (3, 1, 2, 1, 1),
    (3, 2, 2, 1, 1),
    (1, 2, 1, 0, 1),
    (1, 1, 2, 0, 1),
    (1, 1, 1, 0, 1),
    (3, 2, 1, 1, 2),
    (3, 1, 2, 1, 2),
    (4, 2, 1, 1, 1),
]


@pytest.mark.parametrize("k,up,down,padding,groups", CONV_CASES)
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample(device_branch, k, up, down, padding, groups, flip_weight):
    x = _rand([2, 4, 8, 8], 20, requires_grad=True)
    w = _rand([6, 4 // groups, k, k], 21, requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])
    fn = lambda x, w: ops.conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight)  # noqa: E731
    fast, ref = _run_both(fn, [x, w], second_order=True)
    _compare(fast, ref, f"conv2d_resample k={k} up={up} down={down}")


def test_conv2d_resample_channels_last_on_cpu_only(device_branch):
    x = _rand([2, 4, 8, 8], 22)
    w = _rand([6, 4, 3, 3], 23)
    with ops.fast_paths(True):
        y = ops.conv2d_resample(x, w, padding=1)
    channels_last = y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert channels_last == (device_branch == "cpu-kernels")
    with ops.fast_paths(False):
        assert ops.conv2d_resample(x, w, padding=1).is_contiguous()


# ----------------------------------------------------------------------------- modulated_conv2d

MODCONV_CASES = [
    # kernel, up, down, padding, demodulate, with_noise
    (3, 1, 1, 1, True, True),
    (3, 1, 1, 1, True, False),
    (3, 2, 1, 1, True, True),
    (3, 1, 2, 1, True, False),
    (3, 1, 1, 1, False, True),
    (1, 1, 1, 0, False, False),  # tRGB
    (1, 1, 1, 0, True, True),
    (1, 2, 1, 0, True, False),
]


@pytest.mark.parametrize("k,up,down,padding,demodulate,with_noise", MODCONV_CASES)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("channels_last_input", [False, True])
def test_modulated_conv2d(device_branch, k, up, down, padding, demodulate, with_noise, fused, channels_last_input):
    n, i, o, h = 3, 5, 4, 8
    x = _rand([n, i, h, h], 30)
    if channels_last_input:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    weight = _rand([o, i, k, k], 31, requires_grad=True)
    styles = (_rand([n, i], 32) + 1.5).requires_grad_(True)
    out_res = h * up // down
    noise_map = _rand([n, 1, out_res, out_res], 33)
    strength = torch.tensor(0.3, requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])

    def fn(x, weight, styles, strength):
        noise = noise_map * strength if with_noise else None
        return ops.modulated_conv2d(
            x, weight, styles, noise=noise, up=up, down=down, padding=padding, resample_filter=f, demodulate=demodulate,
            flip_weight=up == 1, fused_modconv=fused,
        )

    inputs = [x, weight, styles, strength] if with_noise else [x, weight, styles, strength.detach()]
    fast, ref = _run_both(fn, inputs, second_order=True)
    _compare(fast, ref, f"modconv k={k} up={up} down={down} demod={demodulate} noise={with_noise} fused={fused}")


def test_modulated_conv2d_no_grad_matches(device_branch):
    x = _rand([4, 6, 8, 8], 34)
    weight = _rand([7, 6, 3, 3], 35)
    styles = _rand([4, 6], 36) + 1.5
    noise = _rand([4, 1, 16, 16], 37)
    f = ops.setup_filter([1, 3, 3, 1])
    with torch.no_grad():
        outs = []
        for fast in (True, False):
            with ops.fast_paths(fast):
                outs.append(ops.modulated_conv2d(x, weight, styles, noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False))
    _assert_close(outs[0], outs[1], what="modconv no_grad")


def test_modulated_conv2d_float16_keeps_reference():
    x = _rand([2, 4, 6, 6], 38).half()
    weight = _rand([5, 4, 3, 3], 39)
    styles = _rand([2, 4], 40) + 1.5
    outs = []
    for fast in (True, False):
        with ops.fast_paths(fast):
            try:
                outs.append(ops.modulated_conv2d(x, weight, styles, padding=1))
            except RuntimeError as e:  # fp16 convolution not implemented on this CPU build
                pytest.skip(str(e))
    assert torch.equal(outs[0], outs[1])


# ----------------------------------------------------------------------------- networks


def _tiny_networks(**synthesis):
    from stylegan.models.stylegan2 import (
        Discriminator,
        DiscriminatorConfig,
        Generator,
        GeneratorConfig,
        MappingConfig,
        SynthesisConfig,
    )

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(
        z_dim=16, w_dim=16, img_resolution=16, mapping=MappingConfig(num_layers=2),
        synthesis=SynthesisConfig(channel_base=128, channel_max=16, **synthesis),
    ))
    d = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16))
    # Perturb the zero-initialised biases / noise strengths so that every term is exercised.
    with torch.no_grad():
        for name, p in itertools.chain(g.named_parameters(), d.named_parameters()):
            if "bias" in name or "noise_strength" in name:
                p.add_(0.1 * torch.randn_like(p))
    return g, d


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("fused", [True, False])
def test_generator_and_discriminator_training_step(architecture, fused):
    """G+D losses, parameter gradients and an R1 penalty (double backward through D) agree."""
    g, d = _tiny_networks(architecture=architecture, fused_modconv_default=fused)
    g.train()
    d.train()
    z = _rand([4, 16], 50)
    real = _rand([4, 3, 16, 16], 51).requires_grad_(True)
    params = list(g.parameters()) + list(d.parameters())
    results = {}
    for fast in (True, False):
        with ops.fast_paths(fast):
            img = g(z, noise_mode="const")
            loss = torch.nn.functional.softplus(-d(img)).mean()
            logits_real = d(real)
            (r1_grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            loss = loss + torch.nn.functional.softplus(-logits_real).mean() + r1_grad.square().sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        results[fast] = (img, loss, grads)
    _assert_close(results[True][0], results[False][0], what="G image")
    _assert_close(results[True][1], results[False][1], what="loss")
    names = [n for n, _ in itertools.chain(g.named_parameters(), d.named_parameters())]
    for name, a, b in zip(names, results[True][2], results[False][2]):
        if b is None:
            assert a is None, name
        else:
            _assert_close(a, b, rtol=2e-5, what=f"grad {name}")


def test_generator_inference_matches():
    g, _ = _tiny_networks()
    g.eval()
    z = _rand([3, 16], 52)
    with torch.no_grad():
        with ops.fast_paths(True):
            a = g(z, noise_mode="const")
        with ops.fast_paths(False):
            b = g(z, noise_mode="const")
    _assert_close(a, b, what="G_ema image")
    assert a.is_contiguous()


def test_fp16_off_cuda_networks_run_the_reference_ops():
    """fp16 blocks on CPU (stylegan2-ada reproduction mode) must round exactly as the official code."""
    g, _ = _tiny_networks(fp16_cuda_only=False, num_fp16_res=1)
    g.eval()
    z = _rand([2, 16], 53)
    before = ops.fast_paths_enabled()
    with torch.no_grad():
        try:
            with ops.fast_paths(True):
                a = g(z, noise_mode="const")
        except RuntimeError as e:  # fp16 convolution not implemented on this CPU build
            pytest.skip(str(e))
        with ops.fast_paths(False):
            b = g(z, noise_mode="const")
    assert torch.equal(a, b)
    assert ops.fast_paths_enabled() == before  # the network's reference-ops block restored the switch

"""ADA augmentation pipeline: identities, per-transform semantics, gradients (incl. double backward)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.ops.fastpath import fast_paths
from stylegan.training.augment import _SYM2, AUGMENT_PRESETS, AugmentPipe, _filter_bank, _grid_sample, ada_update, augment_pipe

OFFICIAL_PRESETS = ["blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"]
ATOL = 5e-5  # float32 resampling round-off on N(0, 1) images


def make_pipe(p: float = 1.0, spec: str | None = None, **kwargs) -> AugmentPipe:
    pipe = augment_pipe(spec) if spec else AugmentPipe(**kwargs)
    pipe.p.copy_(torch.as_tensor(p))
    return pipe


def flip_blur(x: torch.Tensor, dim: int) -> torch.Tensor:
    """What a mirror along `dim` becomes in the official geometric path.

    Upsampling with sym6, mirroring and downsampling with the same (asymmetric) filter reduces, along the
    mirrored axis, to a 12-tap filter: the even phase of 2 * (h * h), h = sym6 normalised to sum 1 (not
    a unit impulse, because sym6 is not symmetric). Unmirrored axes pass through exactly.
    """
    h = AugmentPipe().Hz_geom.double().numpy()
    taps = torch.tensor(2 * np.convolve(h, h)[0::2], dtype=x.dtype)
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    xp = F.pad(x.reshape(-1, 1, n), [5, 6], mode="reflect")
    y = sum(taps[i] * xp[..., i : i + n] for i in range(taps.numel()))
    return y.reshape(x.shape).movedim(-1, dim)


def nearest(out: torch.Tensor, candidates: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: the smallest max-abs error over the candidates, and which candidate attains it."""
    err = torch.stack([(out - c).flatten(1).abs().amax(1) for c in candidates], dim=1)
    return err.min(dim=1).values, err.argmin(dim=1)


# ----------------------------------------------------------------------------- construction


def test_presets_and_defaults():
    assert list(AUGMENT_PRESETS) == OFFICIAL_PRESETS
    assert AUGMENT_PRESETS["bgc"] == dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                                          brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    assert set(AUGMENT_PRESETS["bgcfnc"]) == set(AUGMENT_PRESETS["bgc"]) | {"imgfilter", "noise", "cutout"}
    pipe = augment_pipe("bgc")
    assert pipe.p.dtype == torch.float32 and pipe.p.ndim == 0 and float(pipe.p) == 0
    assert set(pipe.state_dict()) == {"p", "Hz_geom", "Hz_fbank"}  # the official module's buffers
    assert pipe.Hz_fbank.shape == (4, 43)


def test_ada_update_moves_p_toward_the_target():
    p = torch.tensor(0.5)
    step = 64 * 4 / (500 * 1000)  # batch 64, every 4 minibatches, 500 kimg for a change of 1
    assert float(ada_update(p, 0.9, 0.6, 64, 4, 500)) == pytest.approx(0.5 + step)  # D overfits: more augmentation
    assert float(ada_update(p, 0.1, 0.6, 64, 4, 500)) == pytest.approx(0.5 - step)
    assert float(ada_update(p, 0.6, 0.6, 64, 4, 500)) == 0.5  # at the target
    assert float(ada_update(torch.tensor(0.0001), -1.0, 0.6, 64, 4, 500)) == 0.0  # never below 0
    assert ada_update(p, None, 0.6, 64, 4, 500) is p and ada_update(p, float("nan"), 0.6, 64, 4, 500) is p
    assert float(p) == 0.5  # a pure function: the input is left alone


def test_unknown_preset():
    with pytest.raises(ValueError) as info:
        augment_pipe("nope")
    assert "nope" in str(info.value) and all(name in str(info.value) for name in OFFICIAL_PRESETS)


def test_filter_bank_is_a_partition_of_unity():
    bank = _filter_bank(_SYM2)
    impulse = np.zeros(bank.shape[1])
    impulse[bank.shape[1] // 2] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank[1:].sum(axis=1), 0, atol=1e-12)  # band-pass rows reject DC


def test_imgfilter_bands_length_checked():
    with pytest.raises(ValueError, match="imgfilter_bands"):
        AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1])


# ----------------------------------------------------------------------------- identities


@pytest.mark.parametrize("spec", ["bgc", "bgcfnc"])
@pytest.mark.parametrize("channels", [1, 3])
def test_p0_is_exact_identity(spec, channels):
    x = torch.randn(2, channels, 16, 16)
    assert torch.equal(make_pipe(0.0, spec)(x), x)


@pytest.mark.parametrize("channels", [1, 3])
def test_unselected_samples_are_near_identity(channels):
    """p > 0 but no sample selected: the geometric path still resamples (up, identity warp, down), which
    is exact up to float round-off because sym6 is orthogonal; colour and filter matrices are identities
    up to round-off; noise and cutout are exact."""
    torch.manual_seed(0)
    x = torch.randn(4, channels, 32, 32)
    out = make_pipe(1e-12, "bgcfnc")(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    torch.testing.assert_close(out, x, atol=ATOL, rtol=0)


def test_all_bands_off_is_near_identity():
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(make_pipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 0])(x), x, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- pixel blitting


def test_xflip():
    torch.manual_seed(1)
    x = torch.randn(64, 3, 16, 16)
    out = make_pipe(xflip=1)(x)
    err, which = nearest(out, [x, flip_blur(x.flip(3), 3)])
    assert err.max() < ATOL
    assert 10 < int(which.sum()) < 54  # both occur (each with probability 1/2)


def test_xflip_of_smooth_image_is_close_to_a_plain_mirror():
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    x = torch.sin(2 * xx + yy)[None, None] + 0.5 * xx
    out = AugmentPipe(xflip=1)(x, debug_percentile=torch.tensor(0.75))  # debug: every transform at that quantile
    assert (out - x.flip(3)).abs().max() < 2e-2


def test_rotate90():
    torch.manual_seed(2)
    x = torch.randn(64, 3, 16, 16)
    out = make_pipe(rotate90=1)(x)
    # Rotation by k quarter turns mirrors one axis (k = 1, 3) or both (k = 2); see flip_blur.
    refs = [
        x,
        flip_blur(torch.rot90(x, 1, dims=(2, 3)), 2),
        flip_blur(flip_blur(torch.rot90(x, 2, dims=(2, 3)), 2), 3),
        flip_blur(torch.rot90(x, 3, dims=(2, 3)), 3),
    ]
    err, which = nearest(out, refs)
    assert err.max() < ATOL
    assert set(which.tolist()) == {0, 1, 2, 3}


def test_xint_is_a_reflect_padded_integer_shift():
    torch.manual_seed(3)
    x = torch.randn(64, 1, 16, 16)
    out = make_pipe(xint=1)(x)
    r = 2  # round(xint_max * 16)
    xp = F.pad(x, [r] * 4, mode="reflect")
    shifts = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    refs = [xp[:, :, r - dy : r - dy + 16, r - dx : r - dx + 16] for dy, dx in shifts]  # content moves by (dy, dx)
    err, which = nearest(out, refs)
    assert err.max() < ATOL
    assert len(set(which.tolist())) > 10


def test_geometric_keeps_a_constant_image():
    x = torch.full([8, 3, 16, 16], 0.3)
    torch.testing.assert_close(make_pipe(spec="bg")(x), x, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- colour


@pytest.mark.parametrize("channels", [1, 3])
def test_brightness_adds_a_per_sample_constant(channels):
    torch.manual_seed(4)
    x = torch.randn(16, channels, 8, 8)
    d = (make_pipe(brightness=1)(x) - x).flatten(1)
    assert (d.amax(1) - d.amin(1)).max() < 1e-5
    assert d[:, 0].abs().min() > 0


@pytest.mark.parametrize("channels", [1, 3])
def test_contrast_scales_about_zero(channels):
    """Official semantics: a per-sample factor about 0 (mid-gray of [-1, 1] images), not about the mean."""
    torch.manual_seed(5)
    x = torch.randn(16, channels, 8, 8) + 0.5
    out = make_pipe(contrast=1)(x)
    k = out.flatten(1)[:, :1] / x.flatten(1)[:, :1]
    torch.testing.assert_close(out.flatten(1), k * x.flatten(1), atol=1e-5, rtol=1e-5)
    assert (k > 0).all() and (k - 1).abs().max() > 0.1


def test_lumaflip_on_grayscale_negates():
    torch.manual_seed(6)
    x = torch.randn(32, 1, 8, 8)
    out = make_pipe(lumaflip=1)(x)
    err, which = nearest(out, [x, -x])
    assert err.max() < 1e-5 and 0 < int(which.sum()) < 32


def test_hue_and_saturation_skip_grayscale():
    x = torch.randn(4, 1, 8, 8)
    rng = torch.get_rng_state()
    assert torch.equal(make_pipe(hue=1, saturation=1)(x), x)
    assert torch.equal(torch.get_rng_state(), rng)  # skipped entirely, as officially


@pytest.mark.parametrize("kind", ["hue", "saturation"])
def test_hue_and_saturation_keep_luma(kind):
    torch.manual_seed(7)
    x = torch.randn(8, 3, 8, 8)
    out = make_pipe(**{kind: 1})(x)
    torch.testing.assert_close(out.mean(dim=1), x.mean(dim=1), atol=1e-5, rtol=0)
    assert (out - x).abs().max() > 0.1


def test_rgba_alpha_untouched_by_colour():
    x = torch.randn(4, 4, 8, 8)
    out = make_pipe(spec="color")(x)
    assert torch.equal(out[:, 3], x[:, 3]) and not torch.equal(out[:, :3], x[:, :3])


# ----------------------------------------------------------------------------- corruptions


def test_cutout_zeroes_a_rectangle():
    torch.manual_seed(8)
    x = torch.randn(16, 3, 16, 16)
    out = make_pipe(cutout=1)(x)
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero])
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # same mask for all channels
    frac = zero.float().mean()
    assert 0.05 < frac < 0.26  # a half-size square, clipped at the borders


def test_noise_is_additive_with_bounded_strength():
    torch.manual_seed(9)
    x = torch.randn(64, 3, 16, 16)
    std = (make_pipe(noise=1)(x) - x).flatten(1).std(dim=1)
    assert (std > 0).all() and std.max() < 0.5  # |N(0, 0.1)| per sample


# ----------------------------------------------------------------------------- whole pipeline


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shape_dtype_preserved(channels):
    x = torch.randn(3, channels, 32, 32)
    out = make_pipe(spec="bgcfnc")(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()


def test_bgc_changes_every_sample():
    torch.manual_seed(10)
    x = torch.randn(64, 3, 32, 32)
    out = make_pipe(spec="bgc")(x)
    assert ((out - x).flatten(1).abs().amax(1) > 1e-2).all()


@pytest.mark.parametrize("p, expected", [(1.0, 0.5), (0.5, 0.25)])
def test_xflip_rate(p, expected):
    """xflip picks a flip or no flip at random when selected, so P(flipped) = p / 2."""
    torch.manual_seed(11)
    x = torch.randn(400, 1, 8, 8)
    out = make_pipe(p, xflip=1)(x)
    _, which = nearest(out, [x, flip_blur(x.flip(3), 3)])
    assert abs(which.float().mean().item() - expected) < 0.08


def test_debug_percentile_is_deterministic_and_ignores_p():
    x = torch.randn(2, 3, 32, 32)
    pipe = make_pipe(0.0, "bgcf")
    a, b = pipe(x, debug_percentile=torch.tensor(0.3)), pipe(x, debug_percentile=0.3)
    assert torch.equal(a, b) and not torch.allclose(a, x)


# ----------------------------------------------------------------------------- gradients


def test_gradient_flows():
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    make_pipe(spec="bgcfnc")(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def r1_weight_grads(seed: int) -> list[torch.Tensor]:
    """R1 as in training: grad of D(augment(x)) w.r.t. x with create_graph, backpropagated into D."""
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(4, 1, 3))
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    torch.manual_seed(seed)
    (r1,) = torch.autograd.grad(D(make_pipe(spec="bgc")(x)).sum(), x, create_graph=True)
    r1.square().sum().backward()
    return [D[0].weight.grad, D[2].weight.grad]


def test_r1_double_backward():
    for g in r1_weight_grads(12):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_fast_and_reference_resampling_agree():
    """Fast paths resample with sym6's 2-D outer product, reference paths with the official 1-D form."""
    x = torch.randn(8, 3, 32, 32)
    outs = []
    for enabled in (True, False):
        torch.manual_seed(14)
        with fast_paths(enabled):
            outs.append(make_pipe(spec="bgc")(x))
    torch.testing.assert_close(outs[0], outs[1], atol=ATOL, rtol=0)
    with fast_paths(False):
        reference = r1_weight_grads(15)
    for fast, ref in zip(r1_weight_grads(15), reference):
        torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)


def test_pipeline_gradgradcheck():
    """Deterministic via debug_percentile; float64 numerical check of first and second derivatives."""
    pipe = augment_pipe("bgcf").double()
    x = torch.randn(1, 3, 24, 24, dtype=torch.float64, requires_grad=True)

    def fn(v):
        return pipe(v, debug_percentile=0.3).square()

    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_grid_sample_wrapper():
    torch.manual_seed(13)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[0.9, 0.2, 0.05], [-0.1, 0.95, -0.1]], dtype=torch.float64).expand(2, 2, 3)
    grid = F.affine_grid(theta, [2, 2, 7, 5], align_corners=False)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.equal(_grid_sample(x, grid), ref)

    def fn(v):
        return _grid_sample(v, grid).square()

    assert torch.autograd.gradcheck(fn, (x,)) and torch.autograd.gradgradcheck(fn, (x,))
    with pytest.raises(ValueError, match="grid"):
        _grid_sample(x, grid.clone().requires_grad_())

"""Keyframe interpolation: exact keyframes, linear midpoints, slerp against its closed form, smooth cubic loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylegan.editing.interpolation import interpolate_keyframes, keyframe_interpolator, num_frames, slerp


def _keys(k: int = 4, shape: tuple[int, ...] = (3, 5), seed: int = 0) -> torch.Tensor:
    return torch.randn([k, *shape], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["cubic", "linear", "slerp"])
@pytest.mark.parametrize("loop", [True, False])
def test_passes_through_keyframes(kind, loop):
    keys, f = _keys(), 6
    out = interpolate_keyframes(keys, f, kind, loop=loop)
    assert out.shape == (num_frames(4, f, loop), 3, 5) == ((24 if loop else 19), 3, 5)
    assert out.dtype == keys.dtype
    torch.testing.assert_close(out[::f], keys, rtol=0, atol=1e-5)


@pytest.mark.parametrize("loop", [True, False])
def test_linear_midpoints(loop):
    keys, f = _keys(3), 4
    out = interpolate_keyframes(keys, f, "linear", loop=loop)
    pairs = [(0, 1), (1, 2)] + ([(2, 0)] if loop else [])  # the looping video returns to keyframe 0
    for i, (a, b) in enumerate(pairs):
        torch.testing.assert_close(out[i * f + f // 2], (keys[a] + keys[b]) / 2, rtol=0, atol=1e-6)
        torch.testing.assert_close(out[i * f + 1], 0.75 * keys[a] + 0.25 * keys[b], rtol=0, atol=1e-6)


def test_slerp_matches_closed_form_on_the_circle():
    alpha, beta = 0.3, 2.1
    a = torch.tensor([math.cos(alpha), math.sin(alpha)], dtype=torch.float64)
    b = torch.tensor([math.cos(beta), math.sin(beta)], dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    out = slerp(a.expand(11, 2), b.expand(11, 2), t)
    angle = alpha + t[:, 0] * (beta - alpha)  # constant angular speed along the great circle
    expected = torch.stack([angle.cos(), angle.sin()], dim=1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_slerp_keeps_unit_norm_and_scales():
    g = torch.Generator().manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn([5, 64], generator=g), dim=1)
    b = torch.nn.functional.normalize(torch.randn([5, 64], generator=g), dim=1)
    for t in (0.0, 0.2, 0.5, 0.9, 1.0):
        out = slerp(a, b, t)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(5), rtol=0, atol=1e-5)
    torch.testing.assert_close(slerp(a, b, 0.0), a, rtol=0, atol=1e-6)
    torch.testing.assert_close(slerp(a, b, 1.0), b, rtol=0, atol=1e-6)
    # Not the chord: the midpoint of slerp is the normalised midpoint of lerp.
    torch.testing.assert_close(slerp(a, b, 0.5), torch.nn.functional.normalize(a + b, dim=1), rtol=0, atol=1e-5)
    torch.testing.assert_close(slerp(3 * a, 3 * b, 0.4), 3 * slerp(a, b, 0.4), rtol=0, atol=1e-5)


def test_slerp_of_parallel_vectors_is_lerp():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    out = slerp(a, 2 * a, 0.25)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, 1.25 * a)


def _second_differences(x: torch.Tensor) -> torch.Tensor:
    return (x[2:] - 2 * x[1:-1] + x[:-2]).flatten(1).abs().amax(dim=1)


def test_cubic_loop_is_c1_across_every_keyframe_and_the_wrap():
    keys, f = _keys(3), 40
    out = interpolate_keyframes(keys, f, "cubic").double()
    d2 = _second_differences(torch.cat([out[-2:], out, out[:2]]))  # periodic extension over the wrap
    smooth = d2.median()
    # A kink of slope jump s adds s/f to a second difference; a C1 curve's are O(1/f^2) everywhere.
    assert d2.max() < 4 * smooth
    # The linear path has kinks at the keyframes, which the same measure sees.
    lin = interpolate_keyframes(keys, f, "linear").double()
    assert _second_differences(torch.cat([lin[-2:], lin, lin[:2]])).max() > 20 * smooth
    # So does a non-periodic spline through the same closed keyframe sequence, at the wrap.
    naive = interpolate_keyframes(torch.cat([keys, keys[:1]]), f, "cubic", loop=False)[:-1].double()
    assert _second_differences(torch.cat([naive[-2:], naive, naive[:2]])).max() > 20 * smooth


def test_cubic_loop_matches_a_periodic_spline():
    import scipy.interpolate

    keys, f = _keys(4, (6,)), 10
    out = interpolate_keyframes(keys, f, "cubic").double().numpy()
    closed = np.concatenate([keys.numpy(), keys.numpy()[:1]]).astype(np.float64)
    periodic = scipy.interpolate.CubicSpline(np.arange(5), closed, bc_type="periodic")(np.arange(4 * f) / f)
    # gen_video.py's padding by two copies on each side approximates the periodic spline closely.
    np.testing.assert_allclose(out, periodic, atol=2e-3 * np.abs(closed).max())


def test_interpolator_evaluates_any_frames():
    keys, f = _keys(5), 7
    at = keyframe_interpolator(keys, f, "cubic")
    full = interpolate_keyframes(keys, f, "cubic")
    torch.testing.assert_close(at(np.array([3, 34, 0])), full[[3, 34, 0]])
    with pytest.raises(ValueError, match=r"frame indices must lie in \[0, 35\)"):
        at(np.array([35]))


def test_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        interpolate_keyframes(_keys(), 4, "quadratic")
    with pytest.raises(ValueError, match="needs at least 4 keyframe"):
        interpolate_keyframes(_keys(3), 4, "cubic", loop=False)
    with pytest.raises(ValueError, match="frames_per_key must be >= 1"):
        interpolate_keyframes(_keys(), 0, "linear")
    with pytest.raises(ValueError, match="same shape"):
        slerp(torch.zeros(3), torch.zeros(4), 0.5)

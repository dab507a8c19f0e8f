"""normalize_2nd_moment, minibatch_stddev and make_noise against explicit formulas / loops."""

from __future__ import annotations

import math

import pytest
import torch

from stylegan.ops import NOISE_MODES, make_noise, minibatch_stddev, normalize_2nd_moment


def _rand(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


# --------------------------------------------------------------------------- normalize_2nd_moment


def test_normalize_2nd_moment_explicit_formula():
    x = _rand((3, 5), seed=0) * 3
    y = normalize_2nd_moment(x)
    for n in range(3):
        ms = sum(float(v) ** 2 for v in x[n]) / 5
        for c in range(5):
            assert y[n, c].item() == pytest.approx(float(x[n, c]) / math.sqrt(ms + 1e-8), rel=1e-12)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(3, dtype=torch.float64))


def test_normalize_2nd_moment_other_dim_and_eps():
    x = _rand((2, 3, 4), seed=1)
    y = normalize_2nd_moment(x, dim=2, eps=0.5)
    torch.testing.assert_close(y, x / torch.sqrt((x**2).sum(dim=2, keepdim=True) / 4 + 0.5))
    y = normalize_2nd_moment(x, dim=1)
    torch.testing.assert_close(y, x / torch.sqrt((x**2).sum(dim=1, keepdim=True) / 3 + 1e-8))
    z = torch.zeros(2, 3, dtype=torch.float64)
    assert torch.equal(normalize_2nd_moment(z), z)  # eps keeps zeros finite


def test_normalize_2nd_moment_scale_invariant():
    x = _rand((4, 8), seed=2)
    torch.testing.assert_close(normalize_2nd_moment(x * 123.0), normalize_2nd_moment(x))


def test_normalize_2nd_moment_gradcheck():
    x = _rand((3, 5), seed=3).requires_grad_(True)
    assert torch.autograd.gradcheck(normalize_2nd_moment, (x,))


# --------------------------------------------------------------------------- minibatch_stddev


def naive_mbstd(x, group_size, num_channels=1):
    """Loop version: sample i is in group i % (N / G); per group and channel-chunk, the mean over
    (chunk channels, H, W) of the population std over the group members (+1e-8 inside the sqrt)."""
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g  # number of groups
    cf = c // num_channels
    stat = torch.zeros(n, num_channels, dtype=x.dtype)
    for grp in range(m):
        members = [i for i in range(n) if i % m == grp]
        assert len(members) == g
        for fi in range(num_channels):
            total = 0.0
            for ch in range(fi * cf, (fi + 1) * cf):
                for yy in range(h):
                    for xx in range(w):
                        vals = [float(x[i, ch, yy, xx]) for i in members]
                        mu = sum(vals) / g
                        var = sum((v - mu) ** 2 for v in vals) / g
                        total += math.sqrt(var + 1e-8)
            for i in members:
                stat[i, fi] = total / (cf * h * w)
    extra = stat[:, :, None, None].expand(n, num_channels, h, w)
    return torch.cat([x, extra], dim=1)


@pytest.mark.parametrize(
    "n,group_size,num_channels",
    [(4, 2, 1), (4, 4, 1), (6, 3, 1), (6, 2, 2), (4, None, 1), (3, None, 2), (2, 4, 1), (3, 8, 2), (4, 1, 1)],
)
def test_minibatch_stddev_vs_loop(n, group_size, num_channels):
    x = _rand((n, 4, 2, 3), seed=10 + n)
    y = minibatch_stddev(x, group_size, num_channels)
    assert y.shape == (n, 4 + num_channels, 2, 3)
    torch.testing.assert_close(y[:, :4], x, rtol=0, atol=0)
    torch.testing.assert_close(y, naive_mbstd(x, group_size, num_channels), rtol=1e-12, atol=1e-12)


def test_minibatch_stddev_group_membership_is_strided():
    """Samples {0, 2} and {1, 3} form the groups (i % (N/G)), not {0, 1} and {2, 3}."""
    x = torch.zeros(4, 1, 1, 1, dtype=torch.float64)
    x[:, 0, 0, 0] = torch.tensor([0.0, 10.0, 2.0, 10.0])
    y = minibatch_stddev(x, group_size=2)[:, 1, 0, 0]
    std02 = math.sqrt(1.0 + 1e-8)  # population std of {0, 2}
    std13 = math.sqrt(0.0 + 1e-8)  # {10, 10}
    torch.testing.assert_close(y, torch.tensor([std02, std13, std02, std13], dtype=torch.float64))


def test_minibatch_stddev_none_and_oversized_group_use_whole_batch():
    x = _rand((3, 2, 2, 2), seed=20)
    whole = naive_mbstd(x, 3)
    torch.testing.assert_close(minibatch_stddev(x, None), whole)
    torch.testing.assert_close(minibatch_stddev(x, 16), whole)
    assert torch.allclose(whole[:, 2], whole[0, 2].expand_as(whole[:, 2]))  # one stat for all


def test_minibatch_stddev_indivisible_batch_raises():
    x = _rand((6, 2, 2, 2), seed=21)
    with pytest.raises(ValueError) as err:
        minibatch_stddev(x, group_size=4)
    msg = str(err.value)
    assert "6" in msg and "4" in msg and "batch size" in msg and "group size" in msg


def test_minibatch_stddev_indivisible_channels_raises():
    with pytest.raises(ValueError, match="mbstd_num_channels"):
        minibatch_stddev(_rand((2, 3, 2, 2), seed=22), group_size=2, num_channels=2)


def test_minibatch_stddev_gradcheck():
    x = _rand((4, 2, 2, 2), seed=23).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: minibatch_stddev(x, 2, 2), (x,))
    assert torch.autograd.gradcheck(lambda x: minibatch_stddev(x, None, 1), (x,))


# --------------------------------------------------------------------------- make_noise


def test_noise_modes_constant():
    assert tuple(NOISE_MODES) == ("const", "random", "none")


def test_make_noise_const():
    const = _rand((4, 4), seed=30, dtype=torch.float32)
    strength = torch.tensor(0.25)
    y = make_noise("const", 3, 4, strength, const, torch.device("cpu"))
    torch.testing.assert_close(y, const * 0.25)
    # broadcasts against a [N, C, 4, 4] activation
    assert (torch.zeros(3, 2, 4, 4) + y).shape == (3, 2, 4, 4)


def test_make_noise_random_is_scaled_and_seedable():
    const = torch.zeros(8, 8)
    strength = torch.tensor(-0.5)
    y = make_noise("random", 2, 8, strength, const, torch.device("cpu"), generator=torch.Generator().manual_seed(7))
    assert y.shape == (2, 1, 8, 8)
    expected = torch.randn([2, 1, 8, 8], generator=torch.Generator().manual_seed(7)) * -0.5
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    y2 = make_noise("random", 2, 8, strength, const, torch.device("cpu"), generator=torch.Generator().manual_seed(8))
    assert not torch.equal(y, y2)
    assert torch.count_nonzero(make_noise("random", 2, 8, torch.tensor(0.0), const, torch.device("cpu"))) == 0


def test_make_noise_random_gradient_reaches_strength():
    strength = torch.tensor(0.3, requires_grad=True)
    y = make_noise("random", 1, 4, strength, torch.zeros(4, 4), torch.device("cpu"), generator=torch.Generator().manual_seed(0))
    y.sum().backward()
    assert strength.grad is not None and strength.grad.item() == pytest.approx((y / 0.3).sum().item(), rel=1e-5)


def test_make_noise_none():
    assert make_noise("none", 2, 4, torch.tensor(1.0), torch.ones(4, 4), torch.device("cpu")) is None


@pytest.mark.parametrize("bad", ["Const", "zero", "", "rand"])
def test_make_noise_bad_mode(bad):
    with pytest.raises(ValueError, match="noise_mode"):
        make_noise(bad, 2, 4, torch.tensor(1.0), torch.ones(4, 4), torch.device("cpu"))

"""Bad arguments to the ops fail with clear errors; modules cast to other float dtypes still run."""

from __future__ import annotations

import pytest
import torch

from stylegan.nn import Conv2dLayer
from stylegan.ops import bias_act, minibatch_stddev


def test_bias_act_negative_dim_matches_positive():
    x, b = torch.randn(2, 3, 4), torch.randn(4)
    torch.testing.assert_close(bias_act(x, b, dim=-1, act="lrelu"), bias_act(x, b, dim=2, act="lrelu"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(dim=3), "dim 3 out of range"),
    (dict(clamp=-1.0), "clamp must be >= 0"),
    (dict(b=torch.zeros(5)), "does not match dim 1"),
])
def test_bias_act_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bias_act(torch.randn(2, 3), **kwargs)


def test_minibatch_stddev_group_size_zero():
    with pytest.raises(ValueError, match="group size must be >= 1"):
        minibatch_stddev(torch.randn(4, 2, 3, 3), group_size=0)


@pytest.mark.parametrize("down", [1, 2])
def test_conv_layer_cast_to_double(down):
    torch.manual_seed(0)
    layer = Conv2dLayer(2, 3, 3, activation="lrelu", down=down)
    x = torch.randn(1, 2, 8, 8)
    ref = layer(x)
    out = layer.double()(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), ref, rtol=1e-5, atol=1e-5)

"""Building blocks shared by the generator families."""

from .layers import Conv2dLayer, FullyConnectedLayer

__all__ = ["Conv2dLayer", "FullyConnectedLayer"]

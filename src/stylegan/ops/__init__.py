"""Differentiable primitives of the StyleGAN family, each a pure-PyTorch function."""

from .bias_act import ACTIVATIONS, activation_gain, bias_act
from .conv2d_resample import conv2d_resample
from .fastpath import fast_paths, fast_paths_enabled, set_fast_paths
from .filter_design import design_lowpass_filter
from .filtered_lrelu import filtered_lrelu
from .misc import NOISE_MODES, assert_shape, make_noise, minibatch_stddev, normalize_2nd_moment
from .modconv import modulated_conv2d, modulated_conv2d_sg3
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS",
    "NOISE_MODES",
    "activation_gain",
    "assert_shape",
    "bias_act",
    "conv2d_resample",
    "design_lowpass_filter",
    "downsample2d",
    "fast_paths",
    "fast_paths_enabled",
    "filter2d",
    "filtered_lrelu",
    "make_noise",
    "minibatch_stddev",
    "modulated_conv2d",
    "modulated_conv2d_sg3",
    "normalize_2nd_moment",
    "set_fast_paths",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]

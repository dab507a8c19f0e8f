"""Triton kernels of the ops, registered as torch ops in the ``stylegan`` namespace (`torch.library.custom_op`:
torch.compile traces around them, autograd goes through their registered backward passes to any order).

Triton compiles them just in time at first use (it ships with PyTorch's CUDA wheels; nothing to build).
`stylegan.ops.backend` imports this package lazily and decides where the kernels run; the pure-PyTorch paths stay
the reference. Every kernel computes in float32 and rounds once to the tensor's dtype, as NVIDIA's CUDA kernels do.
"""

from .bias_act import bias_act_triton
from .filtered_lrelu import filtered_lrelu_triton
from .upfirdn2d import upfirdn2d_triton

__all__ = ["bias_act_triton", "filtered_lrelu_triton", "upfirdn2d_triton"]

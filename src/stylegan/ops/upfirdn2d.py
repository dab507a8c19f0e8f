"""FIR resampling: upsample (zero insertion), pad, filter, downsample — the official `upfirdn2d` op.

`upfirdn2d` is the single entry point; `filter2d`, `upsample2d` and `downsample2d` compute the
padding that keeps images aligned, exactly as NVlabs' `torch_utils.ops.upfirdn2d` does.

With fast paths on and a differentiable input, the op is an autograd function whose backward pass is
`upfirdn2d` again (up and down swapped, the filter flipped, the padding mirrored; NVIDIA's structure), so
second-order gradients (R1, path length) are upfirdn2d calls too and never reach the convolutions' double
backward, which runs one convolution per channel for depthwise filters.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch
import torch.nn.functional as F

from . import backend
from .fastpath import fast_dtype, fast_paths_enabled, under_transform

Padding = int | Sequence[int]
Scaling = int | Sequence[int]


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turn taps into a float32 filter: 1-D taps become their outer product unless `separable`."""
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    assert f.ndim in (0, 1, 2) and f.numel() > 0
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    assert f.ndim == (1 if separable else 2)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def parse_scaling(s: Scaling) -> tuple[int, int]:
    if isinstance(s, int):
        s = [s, s]
    sx, sy = s
    assert sx >= 1 and sy >= 1
    return int(sx), int(sy)


def parse_padding(p: Padding) -> tuple[int, int, int, int]:
    """int -> all sides; [px, py]; or [x0, x1, y0, y1]."""
    if isinstance(p, int):
        p = [p, p]
    p = [int(v) for v in p]
    if len(p) == 2:
        px, py = p
        p = [px, px, py, py]
    assert len(p) == 4, p
    return p[0], p[1], p[2], p[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    assert f.ndim in (1, 2)
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with `f`, keep every `down`-th pixel."""
    assert x.ndim == 4, x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert f.ndim in (1, 2) and f.is_floating_point()
    f = f.float()  # filters are float32; a module cast with .half() / .double() casts its filter buffers too
    if fast_paths_enabled() and fast_dtype(x):
        return _upfirdn2d_dispatch(x, f, parse_scaling(up), parse_scaling(down), parse_padding(padding), flip_filter,
                                   float(gain))
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def _upfirdn2d_dispatch(x: torch.Tensor, f: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
                        padding: tuple[int, int, int, int], flip_filter: bool, gain: float) -> torch.Tensor:
    """Fast upfirdn2d of any dtype: the Triton kernel where it runs, else the autograd function when a graph is
    recorded (and the filter itself needs no gradient), else the fast formulation directly (the reference where it
    covers no case)."""
    if not f.requires_grad and not under_transform(x) and backend.use_triton(x):
        return backend.triton_kernels()[0].upfirdn2d_triton(x, f, up, down, padding, flip_filter, gain)
    if torch.is_grad_enabled() and x.requires_grad and not f.requires_grad and not under_transform(x):
        return _UpFirDn2d.apply(x, f, up, down, padding, flip_filter, gain)
    y = _upfirdn2d_fast(x, f, up, down, padding, flip_filter, gain)
    return y if y is not None else _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def transposed_padding(f: torch.Tensor, up: tuple[int, int], down: tuple[int, int], padding: tuple[int, int, int, int],
                       in_size: tuple[int, int], out_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Padding of the upfirdn2d (up <-> down, filter flipped) that is the transpose of upfirdn2d(up, down, padding)
    mapping [.., in_h, in_w] to [.., out_h, out_w]: its output is the input's size."""
    (upx, upy), (downx, downy) = up, down
    px0, _, py0, _ = padding
    fw, fh = filter_size(f)
    (ih, iw), (oh, ow) = in_size, out_size
    return (fw - px0 - 1, iw * upx - ow * downx + px0 - upx + 1, fh - py0 - 1, ih * upy - oh * downy + py0 - upy + 1)


class _UpFirDn2d(torch.autograd.Function):
    """upfirdn2d as a linear map whose transpose (the backward pass) is upfirdn2d again, to any order."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):  # type: ignore[override]
        y = _upfirdn2d_fast(x, f, up, down, padding, flip_filter, gain)
        if y is None:
            y = _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
        ctx.save_for_backward(f)
        ctx.args = (up, down, padding, flip_filter, gain)
        ctx.sizes = (tuple(x.shape[2:]), tuple(y.shape[2:]))
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        (f,) = ctx.saved_tensors
        up, down, padding, flip_filter, gain = ctx.args
        p = transposed_padding(f, up, down, padding, *ctx.sizes)
        dx = _upfirdn2d_dispatch(dy, f, down, up, p, not flip_filter, gain)
        return dx, None, None, None, None, None, None


def _upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Reference implementation: every step is a plain differentiable PyTorch call."""
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)

    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


# ----------------------------------------------------------------------------- fast path

# Prepared depthwise weights, keyed by the filter tensor's identity and version plus everything the
# preparation depends on; entries die with their filter (checked through a weak reference).
_weight_cache: dict[tuple, tuple[weakref.ref, torch.Tensor]] = {}
_WEIGHT_CACHE_MAX = 256


def _depthwise_weight(f: torch.Tensor, c: int, gain: float, flip: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`f` scaled by gain^(ndim/2), optionally flipped, as a [c, 1, fh, fw] (or [c, 1, fn]) weight."""
    if f.requires_grad or torch.compiler.is_compiling() or under_transform(f):  # not cached: the graph must see f
        return _prepare_weight(f, c, gain, flip, dtype, device)
    key = (id(f), f._version, c, gain, flip, dtype, device, torch.is_inference_mode_enabled())
    hit = _weight_cache.get(key)
    if hit is not None and hit[0]() is f:
        return hit[1]
    with torch.no_grad():
        weight = _prepare_weight(f, c, gain, flip, dtype, device)
    if len(_weight_cache) >= _WEIGHT_CACHE_MAX:
        _weight_cache.clear()
    _weight_cache[key] = (weakref.ref(f), weight)
    return weight


def _prepare_weight(f: torch.Tensor, c: int, gain: float, flip: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    f = f * (gain ** (f.ndim / 2))
    f = f.to(dtype=dtype, device=device)
    if flip:
        f = f.flip(list(range(f.ndim)))
    return f[None, None].repeat([c, 1] + [1] * f.ndim)


def _upfirdn2d_fast(
    x: torch.Tensor, f: torch.Tensor, up: Scaling, down: Scaling, padding: Padding, flip_filter: bool, gain: float
) -> torch.Tensor | None:
    """The same function with less work; None when a case is not covered (the caller falls back).

    * no zero insertion: upsampling is a depthwise transposed convolution with stride `up`, whose
      implicit full padding and `padding=` crop replace the explicit pad;
    * non-negative symmetric padding goes into the convolution (no padded copy);
    * downsampling is the convolution's stride (only the kept outputs are computed).
    """
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    c = x.shape[1]
    fw, fh = filter_size(f)

    if upx > 1 or upy > 1:
        if f.ndim != 2 or x.device.type not in ("cpu", "cuda"):  # depthwise transposed conv: CPU / CUDA only
            return None
        # Zero insertion + pad(p0, p1) + true convolution with f equals the full transposed convolution
        # with f cropped by s0 = fh - 1 - p0 at the start and s1 = fh - up - p1 at the end.
        # A negative crop (padding beyond the transposed convolution's support) adds zeros instead.
        sy0, sy1 = fh - 1 - py0, fh - upy - py1
        sx0, sx1 = fw - 1 - px0, fw - upx - px1
        ty, tx = max(min(sy0, sy1), 0), max(min(sx0, sx1), 0)
        # conv_transpose2d convolves (it does not flip the weight), so the filter is flipped only when
        # the reference would correlate with the unflipped taps (flip_filter=True).
        weight = _depthwise_weight(f, c, gain, flip_filter, x.dtype, x.device)
        y = F.conv_transpose2d(x, weight, stride=(upy, upx), padding=(ty, tx), groups=c)
        crop = (sx0 - tx, sx1 - tx, sy0 - ty, sy1 - ty)
        if min(crop) < 0:
            y = F.pad(y, [-v for v in crop])
        elif max(crop) > 0:
            y = y[:, :, crop[2] : y.shape[2] - crop[3], crop[0] : y.shape[3] - crop[1]]
        if downx > 1 or downy > 1:
            y = y[:, :, ::downy, ::downx]
        return y

    # Crop (negative padding) by slicing; pad the asymmetric part explicitly, the rest in the conv.
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
        px0, px1, py0, py1 = max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)
    ty, tx = min(py0, py1), min(px0, px1)
    if (px0, px1, py0, py1) != (tx, tx, ty, ty):
        x = F.pad(x, [px0 - tx, px1 - tx, py0 - ty, py1 - ty])

    if fw == 1 and fh == 1:  # a 1x1 filter is a scale (x * w is exactly what the 1x1 convolution computes)
        if tx or ty:
            x = F.pad(x, [tx, tx, ty, ty])
        if downx > 1 or downy > 1:
            x = x[:, :, ::downy, ::downx]
        return x * (f.reshape(1, 1, 1, 1) * gain).to(x.dtype)

    weight = _depthwise_weight(f, c, gain, not flip_filter, x.dtype, x.device)
    if f.ndim == 2:
        return F.conv2d(x, weight, stride=(downy, downx), padding=(ty, tx), groups=c)
    x = F.conv2d(x, weight.unsqueeze(2), stride=(1, downx), padding=(0, tx), groups=c)
    return F.conv2d(x, weight.unsqueeze(3), stride=(downy, 1), padding=(ty, 0), groups=c)


def filter2d(
    x: torch.Tensor, f: torch.Tensor, padding: Padding = 0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """Filter without changing the resolution (output size = input size + padding)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor, f: torch.Tensor, up: Scaling = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """Upsample by `up` with FIR filter `f`; gain is multiplied by up² to keep the signal level."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: torch.Tensor, f: torch.Tensor, down: Scaling = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """Downsample by `down` after low-pass filtering with `f`."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)

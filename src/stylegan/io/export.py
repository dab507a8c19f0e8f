"""Export a generator as a self-contained ONNX or TorchScript file, and check the file against the eager network.

What is exported is the pure-PyTorch reference path (`ops.fast_paths(False)`) in float32, with modulated
convolutions in their shared-weight form (`ops.modconv.grouped_modconv(False)`): NVIDIA's fused modconv is a
convolution with one group per sample, and a group count cannot follow a dynamic batch size. The graph holds
standard ONNX operators only (opset >= 17), no custom ops.

Inputs (the batch size N is dynamic; `c` only for conditional networks, `transform` only for networks with a
StyleGAN3-style Fourier-feature input):

| part | inputs | output |
|---|---|---|
| `generator` | `z` [N, z_dim], `c` [N, c_dim], `psi` [N], `transform` [3, 3] | `img` [N, C, H, W] |
| `synthesis` | `ws` [N, num_ws, w_dim], `transform` [3, 3] | `img` [N, C, H, W] |

`psi` is the truncation ψ of each sample (1 = none); `transform` is the matrix of `G.synthesis.input.transform`
(the inverse of the wanted image transform, see `models.stylegan3.make_transform`); `img` is G's float output
(about [-1, 1], not clamped). Noise inputs are baked in: the network's stored maps (`const`) or none.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from typing import cast

import torch

from ..models.common import Generator
from ..models.stylegan3 import make_transform
from ..ops import fast_paths
from ..ops.modconv import grouped_modconv
from .checkpoint import atomic_write_bytes

FORMATS = ("onnx", "torchscript")
PARTS = ("generator", "synthesis")
EXPORT_NOISE_MODES = ("const", "none")
MIN_OPSET = 17
DEFAULT_OPSET = 18
TOLERANCE = 1e-4  # max |Δ| of the exported file against the eager network, float32
VERIFY_SEEDS = (0, 1, 2)


def input_transform(G: Generator) -> torch.Tensor | None:
    """`G.synthesis.input.transform` (the [3, 3] buffer of StyleGAN3-style Fourier-feature inputs), else None."""
    t = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    return t if isinstance(t, torch.Tensor) and tuple(t.shape) == (3, 3) else None


class ExportedGenerator(torch.nn.Module):
    """The traced module: G's reference path with ψ, class and input transform as tensors, noise baked in.

    Truncation as w = w(ψ=0) + ψ (w(ψ=1) - w(ψ=0)), both from G.mapping: the same average (per class where the
    mapping keeps one per class) and cutoff as G's own truncation, with ψ a per-sample tensor.
    """

    def __init__(self, G: Generator, part: str = "generator", noise_mode: str = "const",
                 truncation_cutoff: int | None = None) -> None:
        super().__init__()
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        if noise_mode not in EXPORT_NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {EXPORT_NOISE_MODES}, got {noise_mode!r}")
        self.G = _static_lod(G)
        self.part = part
        self.noise_mode = noise_mode
        self.truncation_cutoff = truncation_cutoff
        self.has_transform = input_transform(G) is not None
        if part == "generator":
            self.input_names = ["z"] + (["c"] if G.c_dim else []) + ["psi"]
        else:
            self.input_names = ["ws"]
        if self.has_transform:
            self.input_names.append("transform")

    def input_shapes(self) -> dict[str, list[int | str]]:
        """Shapes of the inputs, with 'N' for the dynamic batch size."""
        G = self.G
        shapes: dict[str, list[int | str]] = {"z": ["N", G.z_dim], "c": ["N", G.c_dim], "psi": ["N"],
                                              "ws": ["N", G.num_ws, G.w_dim], "transform": [3, 3]}
        return {name: shapes[name] for name in self.input_names}

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = dict(zip(self.input_names, inputs, strict=True))
        if self.part == "generator":
            c = x.get("c")
            ws1 = self.G.mapping(x["z"], c, truncation_psi=1)
            ws0 = self.G.mapping(x["z"], c, truncation_psi=0, truncation_cutoff=self.truncation_cutoff)
            ws = ws0 + x["psi"].reshape(-1, 1, 1) * (ws1 - ws0)
        else:
            ws = x["ws"]
        kwargs = {"noise_mode": self.noise_mode, "force_fp32": True}
        if not self.has_transform:
            return self.G.synthesis(ws, **kwargs)
        buffers = cast(torch.nn.Module, self.G.synthesis.input)._buffers
        stored = buffers["transform"]
        buffers["transform"] = x["transform"]  # the input in place of the buffer while tracing
        try:
            return self.G.synthesis(ws, **kwargs)
        finally:
            buffers["transform"] = stored


def _static_lod(G: Generator) -> Generator:
    """Make the level of detail of progressive-growing networks (a scalar buffer `lod` that selects which blocks
    run) a Python constant of the traced graph, in place: the graph of a network is one level of detail."""
    for m in G.modules():
        lod = m._buffers.get("lod")
        if lod is not None and lod.ndim == 0:
            del m._buffers["lod"]
            m.lod = float(lod)  # type: ignore[assignment]  # a Python constant in place of the buffer
    return G


@dataclass
class ExportResult:
    """What `export_generator` wrote and how well the file reproduces the eager network."""

    path: str
    format: str
    part: str
    inputs: dict[str, list[int | str]]
    max_abs_diff: float | None  # None when not verified
    batch_sizes: list[int] = field(default_factory=list)  # checked in the verification
    seconds: float = 0.0


def example_inputs(G: Generator, names: Sequence[str], seeds: Sequence[int], psi: float = 0.7,
                   transform: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Inputs for `seeds`: z = RandomState(seed).randn(z_dim), c one-hot at seed % c_dim, ws = mapping(z, c, psi),
    `transform` (default: translate (0.25, 0) and rotate 10 degrees, as the parity reference)."""
    z = torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, G.z_dim) for s in seeds]).astype(np.float32))
    c = torch.zeros([len(seeds), G.c_dim])
    for i, s in enumerate(seeds):
        if G.c_dim:
            c[i, s % G.c_dim] = 1
    if transform is None:
        transform = torch.from_numpy(np.linalg.inv(make_transform((0.25, 0), 10))).to(torch.float32)
    values = {"z": z, "c": c, "psi": torch.full([len(seeds)], float(psi)), "transform": transform}
    if "ws" in names:
        with torch.no_grad():
            values["ws"] = G.mapping(z, c if G.c_dim else None, truncation_psi=psi)
    return [values[n] for n in names]


@contextlib.contextmanager
def reference_graph() -> Iterator[None]:
    """The reference ops with shared-weight modulated convolutions, no autograd, and the tracers' chatter muted."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with fast_paths(False), grouped_modconv(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_bytes(module: ExportedGenerator, fmt: str, opset: int = DEFAULT_OPSET) -> bytes:
    """Trace `module` (on the CPU, float32) and serialise it as an ONNX model or a frozen TorchScript module."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset}: must be >= {MIN_OPSET}")
    args = tuple(example_inputs(module.G, module.input_names, seeds=(0, 1)))  # traced at batch 2
    with reference_graph():
        if fmt == "torchscript":
            traced = torch.jit.freeze(torch.jit.trace(module, args, check_trace=False))
            buf = io.BytesIO()
            torch.jit.save(traced, buf)
            return buf.getvalue()
        batch = torch.export.Dim("N", min=1)
        dynamic = tuple(None if name == "transform" else {0: batch} for name in module.input_names)
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(module, args, dynamo=True, external_data=False, input_names=module.input_names,
                                        output_names=["img"], dynamic_shapes=(dynamic,), opset_version=opset)
        assert program is not None
        return program.model_proto.SerializeToString()


def run_exported(data: bytes, fmt: str, inputs: Sequence[torch.Tensor], names: Sequence[str]) -> np.ndarray:
    """Run an exported file's bytes on the CPU (onnxruntime or torch.jit.load)."""
    if fmt == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in PyTorch 2.x, still supported
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    with torch.no_grad():
        return module(*inputs).numpy()


def verify(data: bytes, fmt: str, module: ExportedGenerator, seeds: Sequence[int] = VERIFY_SEEDS, psi: float = 0.7) -> tuple[float, list[int]]:
    """max |Δ| between the exported file and the eager float32 network (its own call, default ops) on `seeds`, run
    as one batch and the first seed alone (batch sizes other than the traced 2)."""
    inputs = example_inputs(module.G, module.input_names, seeds, psi)
    worst = 0.0
    sizes = [len(seeds), 1]
    for n in sizes:
        part = [t if name == "transform" else t[:n] for name, t in zip(module.input_names, inputs)]
        expected = _eager(module, dict(zip(module.input_names, part)), psi)
        got = run_exported(data, fmt, part, module.input_names)
        if got.shape != expected.shape:
            raise RuntimeError(f"exported {fmt} output has shape {list(got.shape)}, expected {list(expected.shape)}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst, sizes


def _eager(module: ExportedGenerator, x: dict[str, torch.Tensor], psi: float) -> np.ndarray:
    """What the exported module computes, by the network's own calls (G(z, c, psi, ...) or G.synthesis(ws))."""
    G = module.G
    buf = input_transform(G)
    saved = None if buf is None else buf.clone()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if buf is not None:
                buf.copy_(x["transform"])
            if "z" in x:
                img = G(x["z"], x.get("c"), truncation_psi=psi, truncation_cutoff=module.truncation_cutoff,
                        noise_mode=module.noise_mode, force_fp32=True)
            else:
                img = G.synthesis(x["ws"], noise_mode=module.noise_mode, force_fp32=True)
        finally:
            if buf is not None and saved is not None:
                buf.copy_(saved)
    return img.numpy()


def export_generator(G: Generator, path: str | os.PathLike, fmt: str, *, part: str = "generator",
                     noise_mode: str = "const", truncation_cutoff: int | None = None, opset: int = DEFAULT_OPSET,
                     check: bool = True, tolerance: float = TOLERANCE) -> ExportResult:
    """Export `G` (any family: mapping/synthesis with `z_dim`, `c_dim`, `w_dim`, `num_ws`) to `path`.

    With `check`, the file is run (onnxruntime on the CPU, or `torch.jit.load`) on `VERIFY_SEEDS` and compared with
    the eager network; a max |Δ| above `tolerance` raises RuntimeError and nothing is written."""
    start = time.perf_counter()
    G = copy.deepcopy(G).to("cpu", torch.float32).eval().requires_grad_(False)
    module = ExportedGenerator(G, part, noise_mode, truncation_cutoff).eval()
    data = export_bytes(module, fmt, opset)
    diff, sizes = verify(data, fmt, module) if check else (None, [])
    if diff is not None and not diff <= tolerance:
        raise RuntimeError(f"the exported {fmt} file differs from the eager network by max |Δ| = {diff:.3g} "
                           f"(tolerance {tolerance:g}); nothing written")
    atomic_write_bytes(path, data)
    return ExportResult(path=str(path), format=fmt, part=part, inputs=module.input_shapes(), max_abs_diff=diff,
                        batch_sizes=sizes, seconds=time.perf_counter() - start)

#!/usr/bin/env python
"""How far mixed precision moves the discriminator's R1 parameter gradients, against a float64 computation.

For every parity network (../shared/parity) the R1 penalty ||grad_x D(x)||² of the reference images and its
gradient with respect to D's parameters, computed:

* ``float64``: the whole network and every op in float64 (reference op paths), the ground truth;
* ``float32``: ``force_fp32`` (reference op paths);
* ``fp16-reference``: fp16 blocks in float16 with the reference op paths (each op rounds after every step);
* ``fp16-torch``: fp16 blocks in float16 with the PyTorch formulations taken on CUDA (`fastpath.cuda_kernels`
  patched on: transposed/strided convolutions, banded products);
* ``fp16-triton``: fp16 blocks in float16 with the Triton kernels (fp32 inside, one rounding per op, as NVIDIA's
  CUDA kernels), run by Triton's interpreter here.

Printed per network and variant: the penalty, the relative error of the whole gradient vector, the worst
per-tensor relative error (||g - g64|| / ||g64|| of one parameter), and how many entries of the input gradient
fall below float16's normal range (6.1e-5) in float64 — values that underflow in a float16 backward pass.

    TRITON_INTERPRET=1 .venv/bin/python benchmarks/r1_precision.py --json out/r1_precision.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any
from collections.abc import Iterator

os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton variant runs on CPU tensors

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

VARIANTS = ("float64", "float32", "fp16-reference", "fp16-torch", "fp16-triton")
LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


class _Float64Everywhere(TorchFunctionMode):
    """Every cast or factory that asks for float32/float16 gets float64 instead."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.float, torch.Tensor.half, torch.Tensor.bfloat16):
            return args[0].double()
        if kwargs.get("dtype") in LOW_PRECISION:
            kwargs["dtype"] = torch.float64
        args = tuple(torch.float64 if a in LOW_PRECISION else a for a in args)
        return func(*args, **kwargs)


@contextlib.contextmanager
def float64_everywhere() -> Iterator[None]:
    """Run a network (already .double()) entirely in float64, including its fp16 blocks and float32 casts."""
    from stylegan.models import common, stylegan2, stylegan3

    users = [m for m in (common, stylegan2, stylegan3) if hasattr(m, "block_dtype")]  # modules that bound the policy
    saved = [m.block_dtype for m in users], torch.get_default_dtype()
    for m in users:
        m.block_dtype = lambda *a, **k: torch.float64  # type: ignore[assignment]
    torch.set_default_dtype(torch.float64)
    try:
        with _Float64Everywhere():
            yield
    finally:
        for m, f in zip(users, saved[0]):
            m.block_dtype = f  # type: ignore[assignment]
        torch.set_default_dtype(saved[1])


@contextlib.contextmanager
def variant(name: str) -> Iterator[dict[str, Any]]:
    """Settings of one variant: yields the D forward's keyword arguments."""
    from stylegan import ops
    from stylegan.models import stylegan2
    from stylegan.ops import backend, fastpath

    saved = (fastpath.cuda_kernels, fastpath.prefer_cpu_kernels, stylegan2._exact_fp16_ops, backend.get_backend(),
             ops.fast_paths_enabled())
    try:
        if name == "float64":
            ops.set_fast_paths(False)
            with float64_everywhere():
                yield {}
            return
        if name == "float32":
            ops.set_fast_paths(False)
            yield {"force_fp32": True}
            return
        if name in ("fp16-torch", "fp16-triton"):  # the CUDA branches on CPU tensors
            fastpath.cuda_kernels = lambda x: True
            fastpath.prefer_cpu_kernels = lambda x: False
            stylegan2._exact_fp16_ops = lambda *a: contextlib.nullcontext()
            backend.set_backend("triton" if name == "fp16-triton" else "torch")
        else:
            ops.set_fast_paths(False)
        yield {}
    finally:
        fastpath.cuda_kernels, fastpath.prefer_cpu_kernels, stylegan2._exact_fp16_ops = saved[:3]
        backend.set_backend(saved[3])
        ops.set_fast_paths(saved[4])


def r1_gradients(D: torch.nn.Module, img: torch.Tensor, c: torch.Tensor, **kw: Any) -> tuple[float, list[torch.Tensor], torch.Tensor]:
    D.requires_grad_(True)
    real = img.detach().requires_grad_(True)
    logits = D(real, c, **kw)
    (grad_x,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    penalty = grad_x.square().sum()
    params = [p for p in D.parameters()]
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    return float(penalty), [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)], grad_x.detach()


def measure(folder: Path, variants: list[str], images: int) -> dict[str, Any]:
    from stylegan import load_network

    net = load_network(folder)
    ref = dict(np.load(folder / "reference.npz"))
    img = torch.from_numpy(ref["img_psi10"][:images]).float()
    c_dim = net.D.c_dim
    c = torch.zeros([img.shape[0], c_dim])
    for s in range(img.shape[0]):
        if c_dim:
            c[s, s % c_dim] = 1
    out: dict[str, Any] = {"network": folder.name, "conv_clamp": getattr(net.D, "conv_clamp", None)}
    truth = None
    for name in variants:
        D = net.D
        for m in D.modules():  # fp16 blocks compute in float16 on the CPU too
            if hasattr(m, "fp16_cuda_only"):
                m.fp16_cuda_only = False
        with variant(name) as kw:
            if name == "float64":
                D64 = copy.deepcopy(D).double()
                penalty, grads, grad_x = r1_gradients(D64, img.double(), c.double(), **kw)
            else:
                penalty, grads, grad_x = r1_gradients(D, img, c, **kw)
        grads = [g.double() for g in grads]
        if truth is None:
            truth = grads
            small = (grad_x.abs() < 2**-14).double().mean().item()
            out["input_grad_below_fp16_normal"] = round(small, 4)
            out["input_grad_abs_median"] = float(grad_x.abs().median())
        flat, flat64 = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in truth])
        names = [n for n, _ in D.named_parameters()]
        per_tensor = {n: ((g - t).norm() / t.norm()).item() for n, g, t in zip(names, grads, truth) if t.norm() > 0}
        worst = max(per_tensor, key=per_tensor.__getitem__)
        share = {n: (t.norm() / flat64.norm()).item() for n, t in zip(names, truth)}  # the tensor's part of the gradient
        out[name] = {"penalty": penalty, "rel_err": ((flat - flat64).norm() / flat64.norm()).item(),
                     "worst_tensor": worst, "worst_tensor_rel_err": per_tensor[worst], "worst_tensor_share": share[worst],
                     "tensors_over_10pct": sorted(n for n, e in per_tensor.items() if e > 0.1),
                     "nonfinite": int((~torch.isfinite(flat)).sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parity", type=Path, default=ROOT.parent / "shared" / "parity")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; float64 (the truth) always runs first")
    ap.add_argument("--networks", default=None, help="comma-separated fixture names (default: all)")
    ap.add_argument("--images", type=int, default=8, help="reference images per network (fp16-triton in the interpreter is slow)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    variants = ["float64"] + [v for v in a.variants.split(",") if v in VARIANTS and v != "float64"]
    rows = []
    for folder in sorted(p for p in a.parity.iterdir() if (p / "reference.npz").is_file()):
        if a.networks and folder.name not in a.networks.split(","):
            continue
        r = measure(folder, variants, a.images)
        rows.append(r)
        print(f"{r['network']}: input-gradient entries below fp16's normal range {r['input_grad_below_fp16_normal']:.1%}")
        for name in variants[1:]:
            v = r[name]
            print(f"  {name:15s} penalty {v['penalty']:.6g} (float64 {r['float64']['penalty']:.6g})  gradient rel. error "
                  f"{v['rel_err']:.2e}, worst tensor {v['worst_tensor']} {v['worst_tensor_rel_err']:.2e} (its norm "
                  f"{v['worst_tensor_share']:.1e} of the whole), {len(v['tensors_over_10pct'])} tensors off by >10%, "
                  f"non-finite {v['nonfinite']}", flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

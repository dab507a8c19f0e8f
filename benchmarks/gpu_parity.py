#!/usr/bin/env python
"""Parity with NVIDIA's outputs on a GPU, through every op backend, plus gradients against float64 — JSON out.

For every network in the parity fixtures (``--parity``: ../shared/parity, official StyleGAN2/3 G and D;
``--parity-xl``: ../shared/parity_xl, official StyleGAN-XL G) and each backend (``triton``, ``torch`` fast paths,
``reference`` paths), on CUDA in float32 (``force_fp32``, TF32 off for cuDNN and matmul): max |Δ| of ws, images
(one per call) and D logits (single and batched) against ``reference.npz`` (``reference_fp32.npz`` where the
fixture has one); the bound is 1e-4 as on CPU. Then, per network and backend, the gradients training uses, against
the same network evaluated in float64 on the GPU: G's non-saturating loss (XL, which has no D here: the mean
square image) with respect to G's parameters, and the R1 penalty with respect to D's parameters (second order),
each in float32 and in the default mixed precision (fp16 blocks).

    python benchmarks/gpu_parity.py --json $OUT/parity.json           # exit status 1 if a parity check fails
    python benchmarks/gpu_parity.py --fixtures .gpu-fixtures          # a copy holding parity/ and parity_xl/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "src", ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import copy  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from r1_precision import float64_everywhere  # noqa: E402

BACKENDS = ("triton", "torch", "reference")
PSIS = {"10": 1.0, "07": 0.7}
TOL = 1e-4


SHARED = ROOT.parent / "shared"  # beside the checkout; does not travel to a GPU machine (pass --fixtures there)


def use_backend(name: str) -> None:
    from stylegan import ops
    from stylegan.ops import backend

    ops.set_fast_paths(name != "reference")
    backend.set_backend("torch" if name == "reference" else name)


def inputs(z_dim: int, c_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The parity README's inputs: seeds 0..7, z from RandomState(seed), one-hot c at seed % c_dim."""
    z = np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in range(8)]).astype(np.float32)
    c = np.zeros([8, c_dim], np.float32)
    for s in range(8):
        if c_dim:
            c[s, s % c_dim] = 1
    return torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)


def max_err(a: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(a.detach().float().cpu().numpy() - ref).max())


def reference_inputs(G, ref: dict[str, np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's z and c where it stores them (StyleGAN-XL's), else the parity README's."""
    if "z" in ref:
        return torch.from_numpy(ref["z"]).to(device), torch.from_numpy(ref["c"]).to(device)
    return inputs(G.z_dim, G.c_dim, device)


def output_errors(G, D, ref: dict[str, np.ndarray], device: torch.device) -> dict[str, float]:
    z, c = reference_inputs(G, ref, device)
    errors = {}
    with torch.no_grad():
        for tag, psi in PSIS.items():
            ws = torch.cat([G.mapping(z[i:i + 1], c[i:i + 1], truncation_psi=psi) for i in range(8)])
            img = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="const", force_fp32=True) for i in range(8)])
            errors[f"ws_psi{tag}"] = max_err(ws, ref[f"ws_psi{tag}"])
            errors[f"img_psi{tag}"] = max_err(img, ref[f"img_psi{tag}"])
            if D is None:
                continue
            single = torch.cat([D(img[i:i + 1], c[i:i + 1], force_fp32=True) for i in range(8)])
            errors[f"logits_psi{tag}"] = max_err(single, ref[f"logits_psi{tag}"])
            errors[f"logits_batch_psi{tag}"] = max_err(D(img, c, force_fp32=True), ref[f"logits_batch_psi{tag}"])
    return errors


def training_gradients(G, D, device: torch.device, force_fp32: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(G's non-saturating loss gradient, D's R1 gradient) as flat float64 vectors; without D, G's gradient of the
    mean square image and None."""
    z, c = inputs(G.z_dim, G.c_dim, device)
    G.requires_grad_(True)
    img = G(z, c, noise_mode="const", force_fp32=force_fp32)
    if D is None:
        g_grads = torch.autograd.grad(img.float().square().mean(), list(G.parameters()), allow_unused=True)
        G.requires_grad_(False)
        return flat(g_grads, list(G.parameters())), None
    D.requires_grad_(False)
    g_loss = F.softplus(-D(img, c, force_fp32=force_fp32)).mean()
    g_grads = torch.autograd.grad(g_loss, [p for p in G.parameters()], allow_unused=True)
    G.requires_grad_(False)
    D.requires_grad_(True)
    real = img.detach().float().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(D(real, c, force_fp32=force_fp32).sum(), real, create_graph=True)
    d_grads = torch.autograd.grad(grad_x.square().sum(), [p for p in D.parameters()], allow_unused=True)
    D.requires_grad_(False)
    return flat(g_grads, list(G.parameters())), flat(d_grads, list(D.parameters()))


def flat(grads, params) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).double().flatten() for g, p in zip(grads, params)])


def rel(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    return None if a is None or b is None else float((a - b).norm() / b.norm().clamp_min(1e-300))


def nonfinite(*ts: torch.Tensor | None) -> int:
    return sum(int((~torch.isfinite(t)).sum()) for t in ts if t is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=SHARED, help="folder holding parity/ and parity_xl/ (default ../shared)")
    ap.add_argument("--parity", type=Path, default=None, help="StyleGAN2/3 fixtures (default FIXTURES/parity)")
    ap.add_argument("--parity-xl", type=Path, default=None, help="StyleGAN-XL fixtures (default FIXTURES/parity_xl)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--no-gradients", action="store_true", help="skip the gradient comparison")
    ap.add_argument("--networks", default=None, help="comma-separated fixture names (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from stylegan import load_network
    from stylegan.ops import backend

    device = torch.device(a.device)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dirs = [a.parity or a.fixtures / "parity", a.parity_xl or a.fixtures / "parity_xl"]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        sys.exit(f"gpu_parity: no fixtures at {', '.join(missing)} (copy ../shared/parity and ../shared/parity_xl and pass --fixtures)")
    folders = sorted(p for d in dirs for p in d.iterdir() if (p / "reference.npz").is_file())
    if a.networks:
        folders = [p for p in folders if p.name in a.networks.split(",")]
    report: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "fixtures": [str(d) for d in dirs],
                              "tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32},
                              "tolerance": TOL, "outputs": [], "gradients": []}
    failed = False
    for folder in folders:
        net = load_network(folder)
        ref_file = folder / "reference_fp32.npz" if (folder / "reference_fp32.npz").is_file() else folder / "reference.npz"
        ref = dict(np.load(ref_file))
        G = net.G_ema.to(device).eval()
        D = net.D.to(device).eval() if net.D is not None else None
        truth = None
        if not a.no_gradients:
            with float64_everywhere():
                use_backend("reference")
                truth = training_gradients(copy.deepcopy(G).double(), copy.deepcopy(D).double() if D is not None else None, device, True)
        for name in a.backends.split(","):
            use_backend(name)
            errors = output_errors(G, D, ref, device)
            ok = max(errors.values()) <= TOL
            failed |= not ok
            row = {"network": folder.name, "reference": ref_file.name, "backend": name,
                   "ops": backend.summary(device), "max_err": max(errors.values()), "ok": ok, "errors": errors}
            report["outputs"].append(row)
            print(f"{folder.name:14s} {name:9s} max |Δ| {row['max_err']:.2e}  {'ok' if ok else 'FAIL'}", flush=True)
            if truth is None:
                continue
            for precision, force_fp32 in (("float32", True), ("mixed", False)):
                g_grad, d_grad = training_gradients(G, D, device, force_fp32)
                grow = {"network": folder.name, "backend": name, "precision": precision,
                        "G_rel_err": rel(g_grad, truth[0]), "D_r1_rel_err": rel(d_grad, truth[1]), "nonfinite": nonfinite(g_grad, d_grad)}
                report["gradients"].append(grow)
                d_text = "-" if grow["D_r1_rel_err"] is None else f"{grow['D_r1_rel_err']:.2e}"
                print(f"{'':14s} {name:9s} {precision:7s} gradients vs float64: G {grow['G_rel_err']:.2e}  "
                      f"D R1 {d_text}  non-finite {grow['nonfinite']}", flush=True)
        del net, G, D
    text = json.dumps(report, indent=2)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

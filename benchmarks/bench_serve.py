#!/usr/bin/env python
"""Frame latency of `stylegan serve` on the CPU: ms per frame at 32² and 256².

A frame is one `POST /api/render` through the whole server stack in-process (Starlette's TestClient: request
parsing, the render worker, G.synthesis, JPEG encoding), each request with a new ψ so nothing is reused, as
while dragging the ψ slider. Reported: median and 90th percentile over the timed frames (warm-up excluded), and
the worker's own render time (X-Render-Ms: mapping + synthesis + uint8 conversion).

Networks (random weights; latency does not depend on them): StyleGAN2 and StyleGAN3-T at 32² in the size of the
shared parity networks (z = w = 64, channel_base 2048, channel_max 64), and at 256² StyleGAN2 in the paper256
configuration (stylegan2-ada's `--cfg paper256`: z = w = 512, channel_base 16384, channel_max 512, 8 mapping
layers) and StyleGAN3-T (`--cfg stylegan3-t`, z = w = 512, channel_base 32768, channel_max 512).

    .venv/bin/python benchmarks/bench_serve.py --threads 2
    .venv/bin/python benchmarks/bench_serve.py --nets sg2-32 sg3t-32 --frames 20 --json out/serve.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def build(name: str):
    import torch

    from stylegan.models import stylegan2, stylegan3

    torch.manual_seed(0)
    if name == "sg2-32":
        return stylegan2.Generator(stylegan2.GeneratorConfig(
            z_dim=64, w_dim=64, img_resolution=32, mapping=stylegan2.MappingConfig(num_layers=2),
            synthesis=stylegan2.SynthesisConfig(channel_base=2048, channel_max=64)))
    if name == "sg3t-32":
        return stylegan3.Generator(stylegan3.stylegan3_config("stylegan3-t", 32, z_dim=64, w_dim=64, channel_base=2048, channel_max=64))
    if name == "sg2-256":
        return stylegan2.Generator(stylegan2.GeneratorConfig(
            z_dim=512, w_dim=512, img_resolution=256, mapping=stylegan2.MappingConfig(num_layers=8),
            synthesis=stylegan2.SynthesisConfig(channel_base=16384, channel_max=512)))
    if name == "sg3t-256":
        return stylegan3.Generator(stylegan3.stylegan3_config("stylegan3-t", 256))
    raise ValueError(name)


def measure(name: str, frames: int, warmup: int) -> dict:
    import torch
    from starlette.testclient import TestClient

    from stylegan.io.load import Network
    from stylegan.serve.app import create_app
    from stylegan.serve.explorer import Explorer

    G = build(name).eval().requires_grad_(False)
    explorer = Explorer(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.safetensors"
        Network(G_ema=G).save(path)
        explorer.load(str(path))
    total, render = [], []
    with TestClient(create_app(explorer)) as client:
        for i in range(warmup + frames):
            params = {"network": name, "client": "bench", "x": 0, "psi": 1 - 0.01 * i, "format": "jpeg"}
            start = time.perf_counter()
            r = client.post("/api/render", json=params)
            elapsed = (time.perf_counter() - start) * 1000
            assert r.status_code == 200, r.text
            if i >= warmup:
                total.append(elapsed)
                render.append(float(r.headers["x-render-ms"]))
    explorer.close()
    q = statistics.quantiles(total, n=10) if len(total) > 1 else total * 9
    return {"net": name, "resolution": G.img_resolution, "frames": frames, "ms_per_frame": statistics.median(total),
            "p90_ms": q[-1], "render_ms": statistics.median(render), "fps": 1000 / statistics.median(total)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=["sg2-32", "sg3t-32", "sg2-256", "sg3t-256"])
    p.add_argument("--frames", type=int, default=None, help="timed frames (default 30 at 32², 5 at 256²)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name in args.nets:
        frames = args.frames or (30 if name.endswith("-32") else 5)
        r = measure(name, frames, args.warmup)
        results.append(r)
        print(f"{r['net']:>9} {r['resolution']:>4}²: {r['ms_per_frame']:8.1f} ms/frame (p90 {r['p90_ms']:.1f}, "
              f"render {r['render_ms']:.1f}) = {r['fps']:.2f} fps over {r['frames']} frames, {torch.get_num_threads()} threads",
              flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

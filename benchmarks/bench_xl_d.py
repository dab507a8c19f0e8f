#!/usr/bin/env python
"""CPU throughput of the StyleGAN-XL projected discriminator with EfficientNet-Lite0 only.

Measures images/s of one forward + backward pass of a class-conditional D (DiffAugment, resize to the feature
resolution, Lite0, CCM + CSM, four mini-discriminators), in training mode, as the training loop runs it:

* ``dstep``: gradients for the mini-discriminators (the D phase; the feature network is frozen);
* ``gpass``: gradients for the input images only (what a G phase pays for D).

Warm-up iterations are excluded; the median over the timed iterations is reported (and the fastest).

    .venv/bin/python benchmarks/bench_xl_d.py                      # 16² images, batch 8, feature res 224 and 128,
                                                                   # official op order and the channels_last option
    .venv/bin/python benchmarks/bench_xl_d.py --res 32 --batch 16 --feature-res 224 --json out/bench_xl_d.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def measure(res: int, batch: int, feature_res: int, mode: str, channels_last: bool, warmup: int, iters: int) -> dict:
    import torch

    from stylegan.models.projected_discriminator import ProjectedDiscriminator, ProjectedDiscriminatorConfig

    torch.manual_seed(0)
    cfg = ProjectedDiscriminatorConfig(backbones=["tf_efficientnet_lite0"], cond=True, c_dim=10, img_resolution=res,
                                       feature_res=feature_res, channels_last=channels_last)
    D = ProjectedDiscriminator(cfg, torch.randn(1000, 320)).train()
    D.requires_grad_(mode == "dstep")
    img = torch.rand(batch, 3, res, res) * 2 - 1
    c = torch.eye(10)[torch.arange(batch) % 10]
    times = []
    for _ in range(warmup + iters):
        x = img.detach().requires_grad_(mode == "gpass")
        t0 = time.perf_counter()
        D(x, c).clamp(min=-1).mean().backward()
        times.append(time.perf_counter() - t0)
        D.zero_grad(set_to_none=True)
    times = times[warmup:]
    return {"res": res, "batch": batch, "feature_res": feature_res, "mode": mode, "channels_last": channels_last,
            "threads": torch.get_num_threads(),
            "img_per_s": batch / statistics.median(times), "img_per_s_best": batch / min(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=16, help="image resolution fed to D")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--feature-res", type=int, nargs="+", default=[224, 128], help="resize target(s) before Lite0")
    ap.add_argument("--modes", nargs="+", default=["dstep", "gpass"], choices=["dstep", "gpass"])
    ap.add_argument("--layouts", nargs="+", default=["official", "channels-last"], choices=["official", "channels-last"],
                    help="official op order (default of the network) and/or its channels_last option")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    rows = [measure(args.res, args.batch, fr, mode, layout == "channels-last", args.warmup, args.iters)
            for layout in args.layouts for fr in args.feature_res for mode in args.modes]
    print(f"{'layout':13s} {'mode':6s} {'res':>4s} {'feat':>5s} {'batch':>5s} {'img/s':>8s} {'best':>8s}  "
          f"({platform.processor() or platform.machine()}, {rows[0]['threads']} threads)")
    for r in rows:
        layout = "channels-last" if r["channels_last"] else "official"
        print(f"{layout:13s} {r['mode']:6s} {r['res']:4d} {r['feature_res']:5d} {r['batch']:5d} {r['img_per_s']:8.1f} {r['img_per_s_best']:8.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Training speed of StyleGAN-XL in s/kimg: the stem at 16² and one super-resolution stage at 32², as the training
loop runs them (G and D phases, the projected D with DiffAugment, G_ema), on random feature networks (the same
cost as pretrained ones).

Each measurement builds a `Trainer` for `--cfg` on Fashion-MNIST (bundled, converted in RGB at the resolution),
runs `--warmup` minibatches, then times `--iters` minibatches; s/kimg = seconds / images x 1000.

    .venv/bin/python benchmarks/bench_xl_training.py                      # CPU: xl-demo sizes, batch 8
    .venv/bin/python benchmarks/bench_xl_training.py --cfg stylegan-xl --batch 64 --device cuda --iters 20 --json out/xl_train.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def trainer(cfg: str, res: int, batch: int, device: str, workdir: Path, grow: bool):
    import torch

    from stylegan.data.dataset import ImageDataset
    from stylegan.data.tool import ConvertConfig, convert_dataset
    from stylegan.models.registry import NetworkSpec
    from stylegan.models.stylegan_xl import GrowthStage, grow_generator
    from stylegan.training.distributed import DistEnv
    from stylegan.training.loop import Trainer
    from stylegan.training.options import resolve
    from stylegan.training.presets import PRESETS

    data = workdir / f"fm{res}.zip"
    if not data.exists():
        convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=data, resolution=(res, res), channels=3, max_images=256),
                        log=lambda s: None)
    stem_res = res // 2 if grow else res
    stem_data = workdir / f"fm{stem_res}.zip"
    if not stem_data.exists():
        convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=stem_data, resolution=(stem_res, stem_res), channels=3,
                                      max_images=256), log=lambda s: None)
    flags = {"cfg": cfg, "data": str(stem_data), "cond": True, "batch": batch, "workers": 0}
    opts = resolve(flags, ImageDataset(str(stem_data), use_labels=True).describe())
    opts.random_backbone = True
    env = DistEnv(0, 1, torch.device(device))
    if grow:
        stem = Trainer(opts, workdir, env, progress=False, log=lambda s: None).G_ema
        G = grow_generator(stem, GrowthStage(2, PRESETS[cfg].head_layers))
        flags["data"] = str(data)
        opts = resolve(flags, ImageDataset(str(data), use_labels=True).describe())
        assert opts.xl_loss is not None
        opts = dataclasses.replace(opts, G=NetworkSpec.of(G), random_backbone=True,
                                   xl_loss=dataclasses.replace(opts.xl_loss, pl_weight=0.0, train_head_only=True))
        t = Trainer(opts, workdir, env, progress=False, log=lambda s: None)
        t.load_networks_from({"G": G})
        return t
    return Trainer(opts, workdir, env, progress=False, log=lambda s: None)


def measure(t, warmup: int, iters: int) -> dict:
    import torch

    from stylegan.io.images import from_uint8

    batches = t._batches()
    seconds = []
    for i in range(warmup + iters):
        img, c = next(batches)
        start = time.time()
        t._step(from_uint8(img.to(t.device)), c.to(t.device))
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        if i >= warmup:
            seconds.append(time.time() - start)
    images = iters * t.opts.batch
    return {"s_per_kimg": round(sum(seconds) / images * 1000, 1), "img_per_s": round(images / sum(seconds), 2), "iters": iters,
            "batch": t.opts.batch, "resolution": t.dataset.resolution, "G_layers": len(t.G.config.synthesis.layers)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default="xl-demo", choices=("xl-demo", "stylegan-xl"))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()

    import torch

    results: dict = {"cfg": a.cfg, "device": a.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "machine": platform.machine(), "note": "random feature networks; G fp32 on CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, res, grow in (("stem_16", 16, False), ("stage_32", 32, True)):
            results[name] = measure(trainer(a.cfg, res, a.batch, a.device, Path(tmp), grow), a.warmup, a.iters)
            print(name, results[name], flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The StyleGAN-XL CPU demo end to end, timed and measured: `stylegan train --cfg xl-demo` (a 16² class-conditional
stem on the bundled Fashion-MNIST), then `stylegan train --grow-from RUN --to 32` (one super-resolution stage),
then a class-confusion count of each stage's G_ema.

The confusion count: for every class, the mean of `--samples` generated images of that class is compared (L2) with
the mean real image of every class at the same resolution; a class counts when its generated mean is nearest to its
own class's real mean (10/10: every class is recognisable on average; chance: ~1/10). "centered" does the same after
subtracting each side's mean over the classes (nearest by cosine), so a colour cast shared by all classes does not hide
class-specific shapes. The same count for the
untrained stem (its fresh initialisation) is the baseline. The samples image of the grown stage (one row per class)
is copied to `out/artifacts/xl-demo-samples.png`.

    .venv/bin/python benchmarks/xl_demo.py                               # the full demo (preset lengths)
    .venv/bin/python benchmarks/xl_demo.py --stem-kimg 0.016 --stage-kimg 0.016 --outdir out/xl-demo-ci   # a few ticks
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def run(args: list[str]) -> float:
    """`stylegan train ARGS` in a subprocess; seconds it took."""
    start = time.time()
    subprocess.run([sys.executable, "-m", "stylegan", "train", *args], check=True)
    return time.time() - start


def run_seconds(run_dir: Path) -> float:
    """Wall time of a finished run: from its training_options.json to its last written file (the summary images)."""
    times = [p.stat().st_mtime for p in run_dir.iterdir()]
    return max(times) - (run_dir / "training_options.json").stat().st_mtime


def newest_run(outdir: Path) -> Path:
    return max((p for p in outdir.iterdir() if p.is_dir()), key=lambda p: p.name)


def real_class_means(data: str):
    import torch

    from stylegan.data.dataset import ImageDataset

    ds = ImageDataset(data, use_labels=True)
    info = ds.describe()
    sums = torch.zeros(info.label_dim, info.channels, info.resolution, info.resolution, dtype=torch.float64)
    counts = torch.zeros(ds.label_dim)
    for i in range(len(ds)):
        img, label = ds[i]
        k = int(torch.as_tensor(label).argmax())
        sums[k] += torch.as_tensor(img, dtype=torch.float64) / 127.5 - 1
        counts[k] += 1
    return sums / counts.view(-1, 1, 1, 1)


def confusion(G, real_means, samples: int, seed: int = 0) -> dict:
    """Classes whose mean generated image is nearest (L2) to their own class's mean real image; and the same with
    class-specific structure only ("centered": each side's mean over classes subtracted, nearest by cosine), which a
    colour shift shared by all classes does not hide."""
    import torch

    g = torch.Generator().manual_seed(seed)
    means = []
    with torch.no_grad():
        for k in range(G.c_dim):
            z = torch.randn([samples, G.z_dim], generator=g)
            c = torch.nn.functional.one_hot(torch.full([samples], k), G.c_dim).float()
            means.append(torch.cat([G(zz, cc, noise_mode="const") for zz, cc in zip(z.split(16), c.split(16))]).double().mean(0))
    gen = torch.stack(means).flatten(1)
    real = real_means.flatten(1)
    nearest = torch.cdist(gen, real).argmin(1).tolist()
    gc, rc = gen - gen.mean(0), real - real.mean(0)
    centered = (torch.nn.functional.normalize(gc, dim=1) @ torch.nn.functional.normalize(rc, dim=1).T).argmax(1).tolist()
    own = range(len(nearest))
    return {"correct": sum(int(n == k) for k, n in zip(own, nearest)), "centered_correct": sum(int(n == k) for k, n in zip(own, centered)),
            "classes": len(nearest), "nearest": nearest, "centered_nearest": centered}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--outdir", type=Path, default=ROOT / "out" / "xl-demo")
    p.add_argument("--stem-kimg", type=float, default=None, help="stem length (default: the preset's)")
    p.add_argument("--stage-kimg", type=float, default=None, help="stage length (default: the preset's)")
    p.add_argument("--samples", type=int, default=64, help="generated images per class for the confusion count")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--runs", type=Path, nargs=2, default=None, metavar=("STEM", "STAGE"),
                   help="measure these two finished runs instead of training (times from their run folders' files)")
    a = p.parse_args()

    import torch

    from stylegan.io.load import load_network
    from stylegan.models.registry import build_network

    common = ["--no-progress", "--outdir", str(a.outdir)]
    if a.runs:
        (stem, stage), (t_stem, t_stage) = a.runs, [run_seconds(r) for r in a.runs]
    else:
        stem_args = ["--cfg", "xl-demo", "--data", "builtin:fashion-mnist", "--cond", *common]
        t_stem = run(stem_args + (["--kimg", str(a.stem_kimg)] if a.stem_kimg else []))
        stem = newest_run(a.outdir)
        t_stage = run(["--grow-from", str(stem), "--to", "32", *common] + (["--kimg", str(a.stage_kimg)] if a.stage_kimg else []))
        stage = newest_run(a.outdir)

    results: dict = {"stem_run": str(stem), "stage_run": str(stage), "stem_seconds": round(t_stem, 1), "stage_seconds": round(t_stage, 1),
                     "total_seconds": round(t_stem + t_stage, 1), "torch_threads": torch.get_num_threads()}
    for name, run_dir in (("stem", stem), ("stage", stage)):
        opts = json.loads((run_dir / "training_options.json").read_text())
        G = load_network(sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1]).generator
        means = real_class_means(opts["data"])
        results[f"{name}_kimg"] = json.loads((run_dir / "stats.jsonl").read_text().splitlines()[-1])["kimg"]
        results[f"{name}_confusion"] = confusion(G, means, a.samples)
        if name == "stem":
            torch.manual_seed(opts["seed"])
            results["untrained_confusion"] = confusion(build_network(opts["G"]).eval(), means, a.samples)
        results["random_backbone"] = opts["random_backbone"]
    artifacts = ROOT / "out" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stage / "samples.png", artifacts / "xl-demo-samples.png")
    shutil.copyfile(stem / "samples.png", artifacts / "xl-demo-stem-samples.png")
    results["samples_image"] = str(artifacts / "xl-demo-samples.png")
    print(json.dumps(results, indent=2))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

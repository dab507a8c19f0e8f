"""How far pivotal tuning moved a generator: the pivot's distance to the target before and after, and how much images
of other latents changed (the locality regulariser's job), for outputs of `stylegan project --pti-steps`.

    python benchmarks/pti_locality.py --network NET RUN_DIR [RUN_DIR ...] [--class K] [--samples 64]

For each RUN_DIR (holding projection.json and G_pti.safetensors) one JSON line: the tuning's settings, the pivot's
distance before/after (projection.json), and the pixel MSE in [-1, 1] units between the untuned and the tuned
network's images of (a) `--samples` random latents (z of seeds 0.., psi 1, constant noise; class seed % c_dim, or
--class) and (b) latents of the regulariser's territory (psi-0.5 latents moved to distance 30 from the pivot).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stylegan import load_network
from stylegan.editing.projection import load_projection
from stylegan.editing.pti import LOCALITY_ALPHA, LOCALITY_PSI, PTI_FILE, locality_ws


@torch.no_grad()
def image_change(G: torch.nn.Module, G_pti: torch.nn.Module, ws: torch.Tensor) -> float:
    """Mean squared pixel difference ([-1, 1] units) of the two networks' images of `ws` [N, num_ws, w_dim]."""
    total = 0.0
    for w in ws.split(16):
        a = G.synthesis(w, noise_mode="const", force_fp32=True)
        b = G_pti.synthesis(w, noise_mode="const", force_fp32=True)
        total += float((a - b).double().square().mean([1, 2, 3]).sum())
    return total / len(ws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", required=True)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--class", dest="class_idx", type=int, default=None)
    ap.add_argument("--samples", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = load_network(args.network).generator.eval()
    seeds = range(args.samples)
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    c = None
    if G.c_dim:
        c = torch.zeros(len(z), G.c_dim)
        c[torch.arange(len(z)), [args.class_idx if args.class_idx is not None else s % G.c_dim for s in seeds]] = 1
    with torch.no_grad():
        random_ws = G.mapping(z, c)
        territory = G.mapping(z, c, truncation_psi=LOCALITY_PSI)
    for run in args.runs:
        info = json.loads((run / "projection.json").read_text())
        pti = info["pti"]
        pivot = load_projection(run / "projected_w.npz").ws
        moved = torch.cat([locality_ws(w[None], pivot, LOCALITY_ALPHA) for w in territory])
        G_pti = load_network(run / PTI_FILE).generator.eval()
        print(json.dumps({
            "run": str(run), "metric": pti["metric"], "steps": pti["steps"], "reg_weight": pti["reg_weight"],
            "reg_input": pti["reg_input"], "distance_projection": pti["distance_before"], "distance_pti": pti["distance"],
            "change_random_latents": image_change(G, G_pti, random_ws), "change_territory": image_change(G, G_pti, moved),
        }))


if __name__ == "__main__":
    main()

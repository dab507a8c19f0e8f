"""StyleGAN-XL training pieces around the loop: the projected discriminator's setup (class embedding, pretrained
feature networks or the demo's random backbone), frozen backbones stored by reference in snapshots, and the next
stage grown from a previous run (`stylegan train --grow-from RUN --to RES`).

A stage is a run of its own (the official code trains each stage as a new run with `--superres --path_stem`): its
generator is the previous stage's G_ema grown by `models.stylegan_xl.grow_generator` (mapping, Fourier features and
the kept layers carried over, new head layers), its discriminator is new, and the loss trains the head layers only
(`XLLossConfig.superres`). The snapshot it grows from is the previous run's best by a recorded FID/KID when there
is one, else its newest; `best_model.pkl` is never needed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..io.checkpoint import read_snapshot
from ..io.download import WeightsUnavailable, file_sha256
from ..io.feature_weights import (feature_weights_path, frozen_backbone_reference, load_feature_weights, load_guidance_classifier,
                                  restore_frozen_backbones)
from ..io.runs import OPTIONS_FILE, latest_snapshot, snapshot_kimg, snapshots
from ..models import stylegan_xl
from ..models.projected_discriminator import ProjectedDiscriminator
from ..models.registry import NetworkSpec, build_network
from .loss import Report
from .loss_xl import ProjectedGANLoss
from .options import GrownFrom, OptionsError, TrainingOptions

LOWER_IS_BETTER = ("fid", "kid")  # metric name prefixes by which a snapshot is the best


# ----------------------------------------------------------------------------- the discriminator


def feature_weights_available(backbones: list[str], source: str | None) -> WeightsUnavailable | None:
    """None when every feature network's weights are in `source` or the cache (no download tried), else the error
    naming what to fetch and where."""
    for name in backbones:
        try:
            feature_weights_path(name, source, download=False)
        except WeightsUnavailable as e:
            return e
    return None


def prepare_discriminator(D: ProjectedDiscriminator, opts: TrainingOptions) -> dict[str, dict[str, Any]]:
    """A new projected D as the official construction leaves it: the ImageNet class embedding in its conditional
    heads, the feature networks' pretrained weights (from --feature-weights or the cache, downloading where
    allowed) — or, with `random_backbone` (xl-demo without weights), the random feature networks it was built with.
    Returns the reference records of the loaded weights (see `snapshot_state`)."""
    if D.config.cond and not D.config.rand_embedding:
        D.set_class_embedding(stylegan_xl.imagenet_class_embedding())
    if opts.random_backbone:
        return {}
    return load_feature_weights(D, opts.feature_weights)


def projected_loss(G: torch.nn.Module, D: torch.nn.Module, opts: TrainingOptions, device: torch.device,
                   report: Report) -> ProjectedGANLoss:
    """The run's ProjectedGANLoss, with the DeiT-S guidance classifier when it has a classifier-guidance weight."""
    assert opts.xl_loss is not None
    classifier = load_guidance_classifier(source=opts.feature_weights, device=device) if opts.xl_loss.cls_weight else None
    return ProjectedGANLoss(G, D, opts.xl_loss, classifier, report=report)  # type: ignore[arg-type]


def snapshot_state(state: dict[str, torch.Tensor], records: dict[str, dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """D's state dict without the pretrained feature-network parameters (stored by reference: file name, URL,
    sha256s) and the extra entry that says so; unchanged without records."""
    if not records:
        return state, {}
    kept, refs = frozen_backbone_reference(state, records)
    return kept, {"feature_weights": refs}


def restore_state(state: dict[str, torch.Tensor], extra: dict[str, Any], source: str | None) -> dict[str, torch.Tensor]:
    """The full D state dict of a snapshot: feature networks stored by reference read back from `source` or the
    cache (WeightsUnavailable naming the file when absent)."""
    refs = extra.get("feature_weights")
    return restore_frozen_backbones(state, refs, source) if refs else state


# ----------------------------------------------------------------------------- stages


@dataclass
class StageSource:
    """The previous stage of a `--grow-from` run."""

    run_dir: Path
    opts: TrainingOptions
    snapshot: Path
    why: str  # "newest" or the metric that chose it


def best_snapshot(run_dir: Path) -> tuple[Path, str] | None:
    """The snapshot of `run_dir` with the lowest recorded FID/KID among those still present, with why; None
    when no such metric was recorded."""
    present = {p.name: p for p in snapshots(run_dir)}
    best: tuple[float, str, Path] | None = None
    for path in sorted(run_dir.glob("metric-*.jsonl")):
        metric = path.stem.removeprefix("metric-")
        if not metric.startswith(LOWER_IS_BETTER):
            continue
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            name = Path(str(record.get("snapshot_pkl") or "")).name
            values = [v for v in (record.get("results") or {}).values() if isinstance(v, (int, float)) and math.isfinite(v)]
            if name in present and values and (best is None or values[0] < best[0]):
                best = (values[0], f"{metric} {values[0]:.4g}", present[name])
    return None if best is None else (best[2], best[1])


def stage_source(run: str | Path) -> StageSource:
    """The run a stage grows from and the snapshot it takes (OptionsError naming what is wrong)."""
    run_dir = Path(run)
    if not (run_dir / OPTIONS_FILE).is_file():
        raise OptionsError(f"--grow-from {run}: not a run folder (no {OPTIONS_FILE})")
    opts = TrainingOptions.from_dict(json.loads((run_dir / OPTIONS_FILE).read_text()))
    if opts.G.family != "stylegan_xl" or opts.loss_kind != "projected":
        raise OptionsError(f"--grow-from {run}: a {opts.G.family} run (--cfg {opts.cfg}); only StyleGAN-XL runs grow")
    best = best_snapshot(run_dir)
    if best is not None:
        return StageSource(run_dir, opts, best[0], f"lowest {best[1]}")
    newest = latest_snapshot(run_dir)
    if newest is None:
        raise OptionsError(f"--grow-from {run}: the run has no snapshot yet")
    return StageSource(run_dir, opts, newest, "newest")


def up_factor(stem_res: int, to_res: int) -> int:
    """The growth factor from `stem_res` to `to_res` (OptionsError unless one the official code supports)."""
    factor = to_res // stem_res
    if to_res % stem_res or factor not in stylegan_xl.UP_FACTORS:
        raise OptionsError(f"--to {to_res}: must be the previous stage's {stem_res} times one of "
                           f"{', '.join(str(f) for f in stylegan_xl.UP_FACTORS)} (the official growth factors)")
    return factor


def grown_generator(src: StageSource, factor: int, head_layers: int, seed: int) -> stylegan_xl.Generator:
    """The previous stage's G_ema grown by one stage; the new head layers are drawn from `seed` (so a stage
    starts the same every time)."""
    nets, _, _ = read_snapshot(src.snapshot)
    spec, state = nets["G_ema"]
    G = build_network(spec)
    G.load_state_dict(state)
    assert isinstance(G, stylegan_xl.Generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return stylegan_xl.grow_generator(G, stylegan_xl.GrowthStage(factor, head_layers))


def stage_options(opts: TrainingOptions, src: StageSource, G: stylegan_xl.Generator, cls_weight: float) -> TrainingOptions:
    """Options of the new stage: `opts` (resolved for the new resolution) with the grown G, the head-only loss
    without path length, classifier guidance at `cls_weight` (conditional runs only) and where it came from."""
    assert opts.xl_loss is not None
    factor = G.config.history.stages[-1] if G.config.history is not None else None
    assert factor is not None
    loss = dataclasses.replace(opts.xl_loss, pl_weight=0.0, train_head_only=True, cls_weight=cls_weight if opts.cond else 0.0)
    grown = GrownFrom(run=str(src.run_dir), snapshot=src.snapshot.name, kimg=snapshot_kimg(src.snapshot), sha256=file_sha256(src.snapshot),
                      up_factor=factor.up_factor, head_layers=factor.head_layers)
    return dataclasses.replace(opts, G=NetworkSpec.of(G), xl_loss=loss, grown_from=grown, desc=opts.desc or f"from{src.run_dir.name[:5]}")


def layer_table(G: stylegan_xl.Generator) -> list[str]:
    """One line per synthesis layer: name, size, channels, sampling rate, cutoff, and whether this stage trains it."""
    heads = set(G.head_layer_names)
    lines = [f"{'layer':<14}{'size':>6}{'channels':>10}{'rate':>6}{'cutoff':>9}  trains"]
    for lc in G.config.synthesis.layers:
        lines.append(f"{lc.name:<14}{lc.out_size:>6}{lc.out_channels:>10}{lc.out_sampling_rate:>6}{lc.out_cutoff:>9.3g}  "
                     f"{'yes (new)' if lc.name in heads else 'no (frozen)'}")
    return lines

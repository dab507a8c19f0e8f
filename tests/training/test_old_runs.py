"""Runs started before training options became typed and StyleGAN (2019) generator configs were nested
(tests/fixtures/c324a34): their training_options.json reads in the current layout, and `--resume` continues
such a run exactly as it continues one written now."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from helpers import only_run, run_stats
from safetensors import safe_open
from safetensors.torch import save_file

from stylegan.cli.main import main
from stylegan.data.dataset import DatasetInfo
from stylegan.io.checkpoint import read_checkpoint
from stylegan.models.registry import NetworkSpec
from stylegan.training.options import TrainingOptions

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "c324a34"
_SYNTHESIS_KEYS = ("style", "channel_base", "channel_max")
_LATER_SYNTHESIS_KEYS = ("use_noise", "blur_filter", "fused_scale", "resample_filter")


def _flat(spec: dict) -> dict:
    """A StyleGAN (2019) generator spec in the layout written before the mapping / synthesis split."""
    cfg = dict(spec["config"])
    m, s = cfg.pop("mapping"), cfg.pop("synthesis")
    assert m["activation"] == s["activation"] and m["embed_features"] is None
    flat = {**cfg, **{k: s[k] for k in _SYNTHESIS_KEYS}, "mapping_layers": m["num_layers"], "mapping_features": m["layer_features"],
            "mapping_lr_multiplier": m["lr_multiplier"], "w_avg_beta": m["w_avg_beta"], "activation": s["activation"],
            **{k: s[k] for k in _LATER_SYNTHESIS_KEYS}}
    return {**spec, "config": flat}


def test_old_training_options_read_in_the_current_layout():
    old = json.loads((OLD / "demo_training_options.json").read_text())
    opts = TrainingOptions.from_dict(old)
    assert isinstance(opts.G, NetworkSpec) and isinstance(opts.D, NetworkSpec) and isinstance(opts.dataset, DatasetInfo)
    assert opts.G.config.synthesis.channel_base == 64 and opts.D.config.mbstd_group_size == 4 and opts.dataset.name == "fm64"
    assert opts.betas == (0.0, 0.99) and opts.growing is None and opts.loss.r1_gamma == 0.05
    added = {"on_nan": "rollback", "loss_kind": "stylegan2", "xl_loss": None, "feature_weights": None, "random_backbone": False,
             "grown_from": None, "data_spec": None}  # fields added since, with the defaults old runs get
    assert json.loads(json.dumps(opts.to_dict())) == {**old, **added}  # StyleGAN2 runs: the same JSON as before

    paper = json.loads((OLD / "paper_a_training_options.json").read_text())
    o = TrainingOptions.from_dict(paper)
    g = o.G.config
    assert (g.synthesis.style, g.synthesis.channel_base, g.synthesis.channel_max, g.mapping.num_layers, g.mapping.w_avg_beta) == \
        ("adain", 128, 16, 1, 0.995)
    assert o.growing is not None and o.growing.glr == {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
    new = json.loads(json.dumps(o.to_dict()))
    assert {k: v for k, v in new.items() if k != "G"} == {k: v for k, v in {**paper, **added}.items() if k != "G"}
    assert _flat(new["G"]) == paper["G"]  # only the generator config moved, field for field


def _downgrade(run: Path) -> None:
    """Rewrite a run folder's training_options.json and snapshots with the generator spec in the old layout."""
    options = json.loads((run / "training_options.json").read_text())
    options["G"] = _flat(options["G"])
    (run / "training_options.json").write_text(json.dumps(options, indent=2))
    for snap in run.glob("network-snapshot-*.safetensors"):
        with safe_open(str(snap), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        nets = json.loads(meta["networks"])
        extra = json.loads(meta["extra"])
        nets = {name: _flat(spec) if spec["kind"] == "generator" else spec for name, spec in nets.items()}
        extra["training_options"]["G"] = _flat(extra["training_options"]["G"])
        save_file(tensors, str(snap), metadata={**meta, "networks": json.dumps(nets), "extra": json.dumps(extra)})


def test_resume_continues_an_old_layout_run_exactly(data64, tmp_path):
    flags = ["--cfg", "paper-a", "--data", str(data64), "--cbase", "256", "--cmax", "16", "--map-depth", "1", "--workers", "0",
             "--no-progress", "--batch", "8", "--tick", "0.008", "--snap", "1", "--grow-kimg", "0.008,0.008"]
    assert main(["train", *flags, "--kimg", "0.016", "--outdir", str(tmp_path / "runs")]) == 0
    run = only_run(tmp_path / "runs")
    now, old = shutil.copytree(run, tmp_path / "now"), shutil.copytree(run, tmp_path / "old")
    _downgrade(old)
    assert "mapping_layers" in json.loads((old / "training_options.json").read_text())["G"]["config"]
    for folder in (now, old):
        assert main(["train", "--resume", str(folder), "--kimg", "0.032", "--no-progress"]) == 0
    losses = [{k: v for k, v in ln.items() if k.startswith("Loss/")} for ln in run_stats(now)]
    assert len(losses) == 4 and losses == [{k: v for k, v in ln.items() if k.startswith("Loss/")} for ln in run_stats(old)]
    a, _ = read_checkpoint(now / "network-snapshot-000000.032.safetensors")
    b, _ = read_checkpoint(old / "network-snapshot-000000.032.safetensors")
    assert b["G_ema"][0]["config"]["synthesis"]["style"] == "adain"  # the continued run writes the current layout
    assert all(torch.equal(a[n][1][k], b[n][1][k]) for n in a for k in a[n][1])

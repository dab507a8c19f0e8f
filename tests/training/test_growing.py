"""Progressive growing: the level-of-detail schedule, the fade of the reals, the StyleGAN2 paper's configs
A-F (each one step from its predecessor), and training/resuming them end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import only_run, run_stats

from stylegan.cli.main import main
from stylegan.data.dataset import ImageDataset
from stylegan.io.checkpoint import read_checkpoint
from stylegan.io.load import load_network
from stylegan.training.growing import GrowingConfig, fade_reals, level_changed, schedule
from stylegan.training.options import diff_options, resolve
from stylegan.training.presets import PAPER_CONFIGS

TINY = ["--cbase", "256", "--cmax", "16", "--map-depth", "1", "--workers", "0", "--no-progress", "--batch", "8"]


# ----------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("kimg, lod, res", [
    (0, 2.0, 8), (599.9, 2.0, 8), (600, 2.0, 8), (900, 1.5, 16), (1199.9, 1 + 0.1 / 600, 16), (1200, 1.0, 16),
    (1800, 1.0, 16), (2100, 0.5, 32), (2400, 0.0, 32), (10000, 0.0, 32),
])
def test_schedule_follows_nvidias_training_schedule(kimg, lod, res):
    cfg = GrowingConfig(start_res=8, training_kimg=600, transition_kimg=600, batch={8: 256, 16: 128}, glr={32: 0.003})
    s = schedule(int(kimg * 1000), 32, cfg, batch=32, batch_gpu=4, glr=0.001, dlr=0.001)
    # lod = log2(32) - log2(8) - phase - max(phase_kimg - 600, 0) / 600, floored at 0 (TF training_schedule)
    assert s.lod == pytest.approx(lod, abs=1e-9)
    assert s.resolution == res
    assert s.batch == {8: 256, 16: 128}.get(res, 32)
    assert s.glr == (0.003 if res == 32 else 0.001) and s.dlr == 0.001


def test_schedule_without_growing_is_constant():
    s = schedule(123456, 64, None, batch=16, batch_gpu=8, glr=0.002, dlr=0.0025)
    assert (s.lod, s.resolution, s.batch, s.batch_gpu, s.glr, s.dlr) == (0.0, 64, 16, 8, 0.002, 0.0025)


def test_optimizers_reset_where_a_level_or_fade_starts_or_ends():
    assert level_changed(2.0, 1.99) and level_changed(1.01, 1.0) and level_changed(1.0, 0.99)
    assert not level_changed(1.7, 1.5) and not level_changed(2.0, 2.0) and not level_changed(0.0, 0.0)


def test_fade_reals_matches_box_filtered_levels():
    x = torch.randn(2, 3, 16, 16)
    down = lambda t, f: torch.nn.functional.avg_pool2d(t, f)  # noqa: E731
    up = lambda t, f: t.repeat_interleave(f, 2).repeat_interleave(f, 3)  # noqa: E731
    assert torch.equal(fade_reals(x, 0.0), x)
    torch.testing.assert_close(fade_reals(x, 1.0), up(down(x, 2), 2))
    torch.testing.assert_close(fade_reals(x, 2.0), up(down(x, 4), 4))
    torch.testing.assert_close(fade_reals(x, 0.25), 0.75 * x + 0.25 * up(down(x, 2), 2))
    x1 = down(x, 2)  # lod 1.5: the 8x8 level cross-faded with the 4x4 one, shown at 16x16
    torch.testing.assert_close(fade_reals(x, 1.5), up(0.5 * x1 + 0.5 * up(down(x1, 2), 2), 2))


# ----------------------------------------------------------------------------- configs A-F


def _resolve_all(data: Path) -> dict:
    info = ImageDataset(str(data), use_labels=True).describe()
    return {cfg: resolve({"cfg": cfg, "data": str(data)}, info) for cfg in PAPER_CONFIGS}


def test_each_paper_config_is_its_predecessor_plus_one_step(data64):
    o = _resolve_all(data64)
    a = o["paper-a"]
    assert a.G.family == a.D.family == "stylegan1" and a.G.config.synthesis.style == "adain" and a.D.config.style == "basic"
    assert a.growing is not None and a.growing.start_res == 8 and a.growing.training_kimg == a.growing.transition_kimg == 600
    assert a.G_reg_interval is None and a.D_reg_interval is None and a.loss.pl_weight == 0 and a.loss.r1_gamma == 10
    assert a.loss.style_mixing_prob == 0.9 and a.glr == a.dlr == 0.001 and a.aug == "noaug"

    def changed(x, y):
        return {line.split(":")[0] for line in diff_options(o[x], o[y])} - {"cfg"}

    assert changed("paper-a", "paper-b") == {"G.config.synthesis.style", "D.config.style"}  # weight demodulation
    assert changed("paper-b", "paper-c") == {"D_reg_interval"}  # lazy regularisation
    assert o["paper-c"].D_reg_interval == 16 and o["paper-c"].G_reg_interval is None
    assert changed("paper-c", "paper-d") == {"G_reg_interval", "loss.pl_weight"}  # path length regularisation
    assert o["paper-d"].G_reg_interval == 4 and o["paper-d"].loss.pl_weight == 2
    assert changed("paper-d", "paper-e") == {"G", "D", "growing", "glr", "dlr"}  # no growing, skip G / resnet D
    e = o["paper-e"]
    assert e.G.config.synthesis.architecture == "skip" and e.D.config.architecture == "resnet"
    assert e.growing is None and e.glr == 0.002
    assert changed("paper-e", "paper-f") == {"G.config.synthesis.channel_base", "D.config.channel_base"}  # large networks
    # A-E share the channel counts (TF fmap_base 8 << 10), F doubles them.
    assert o["paper-d"].G.config.synthesis.channel_base * 2 == e.G.config.synthesis.channel_base == 16384
    assert o["paper-f"].G.config.synthesis.channel_base == 32768


def test_reg_interval_and_ema_flags(data64):
    info = ImageDataset(str(data64), use_labels=True).describe()
    base = {"cfg": "paper-d", "data": str(data64)}
    assert resolve(base, info).G_reg_interval == 4
    assert resolve({**base, "G_reg_interval": 8}, info).G_reg_interval == 8
    assert resolve({**base, "D_reg_interval": 0}, info).D_reg_interval is None
    assert resolve({**base, "ema_kimg": 2.5}, info).ema_kimg == 2.5
    assert resolve({"cfg": "stylegan3-t", "data": str(data64), "ema_kimg": 1.5}, info).ema_kimg == 1.5


def test_dry_run_diff_prints_the_step_between_two_configs(data64, capsys):
    assert main(["train", "--cfg", "paper-c", "--data", str(data64), "--dry-run", "--diff", "paper-d"]) == 0
    out = capsys.readouterr().out
    assert "--cfg paper-c -> --cfg paper-d" in out and "loss.pl_weight: 0.0 -> 2.0" in out and "G_reg_interval: None -> 4" in out
    assert main(["train", "--cfg", "paper-c", "--data", str(data64), "--dry-run", "--diff", "nope"]) == 2


def test_growing_flags_are_checked(data64, capsys):
    assert main(["train", "--cfg", "paper-a", "--data", str(data64), "--dry-run", "--grow-start", "12"]) == 2
    assert "--grow-start 12" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.parametrize("cfg", list(PAPER_CONFIGS))
def test_every_paper_config_trains_and_its_snapshot_is_usable(cfg, data64, tmp_path):
    out = tmp_path / "runs"
    assert main(["train", "--cfg", cfg, "--data", str(data64), *TINY, "--kimg", "0.048", "--tick", "0.016", "--snap", "1",
                 "--grow-kimg", "0.016,0.016", "--outdir", str(out)]) == 0
    run = only_run(out)
    lines = run_stats(run)
    assert len(lines) >= 3 and all(torch.isfinite(torch.tensor(ln["Loss/G/loss"])) for ln in lines[1:])
    if cfg in ("paper-a", "paper-b", "paper-c", "paper-d"):
        assert lines[0]["Progress/lod"] == 2.0 and lines[-1]["Progress/lod"] == pytest.approx(1.0)
    snap = run / "network-snapshot-000000.048.safetensors"
    net = load_network(snap)
    assert net.G_ema.img_resolution == 32 and net.D is not None
    assert main(["info", str(snap)]) == 0
    assert main(["generate", "--network", str(snap), "--seeds", "0-1", "--outdir", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "seed0001.png").is_file()
    assert main(["metrics", "--network", str(snap), "--data", str(data64), "--metrics", "pfd5k_full", "--num-gen", "64",
                 "--out", str(tmp_path / "m.jsonl")]) == 0


@pytest.mark.slow
def test_mid_growth_resume_repeats_the_uninterrupted_run(data64, tmp_path):
    # 8x8 for 64 images, fade to 16x16, 16x16, fade to 32x32 (where the runs split), 32x32: optimizer resets,
    # lod buffers, per-level learning rates and the fade all cross the resume.
    common = ["train", "--cfg", "paper-b", "--data", str(data64), *TINY, "--tick", "0.032", "--snap", "1",
              "--grow-kimg", "0.056,0.056", "--glr", "0.002", "--dlr", "0.002"]
    assert main([*common, "--kimg", "0.32", "--outdir", str(tmp_path / "a")]) == 0
    assert main([*common, "--kimg", "0.2", "--outdir", str(tmp_path / "b")]) == 0
    run_a, run_b = only_run(tmp_path / "a"), only_run(tmp_path / "b")
    assert 0 < run_stats(run_b)[-1]["Progress/lod"] < 1  # stopped in the middle of the last fade
    assert main(["train", "--resume", str(run_b), "--kimg", "0.32"]) == 0
    a, b = run_stats(run_a), run_stats(run_b)
    assert [s["kimg"] for s in a] == [s["kimg"] for s in b]
    for sa, sb in zip(a, b):
        for k in [k for k in sa if k.startswith(("Loss/", "Progress/"))]:
            assert sb[k] == pytest.approx(sa[k], rel=1e-5, abs=1e-7), (sa["tick"], k)
    nets_a, _ = read_checkpoint(run_a / "network-snapshot-000000.320.safetensors")
    nets_b, _ = read_checkpoint(run_b / "network-snapshot-000000.320.safetensors")
    for name in ("G", "D", "G_ema"):
        for key, value in nets_a[name][1].items():
            torch.testing.assert_close(nets_b[name][1][key], value, rtol=1e-5, atol=1e-6)

"""`stylegan train` end to end on tiny data: run folders, snapshots, exact resume after Ctrl-C,
continuing with other settings, fine-tuning, two processes through torchrun, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import only_run, run_stats

from stylegan.cli.main import main
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.io.checkpoint import read_aux_tensors, read_checkpoint
from stylegan.io.load import load_network

# Tiny networks so that a kimg takes seconds on one core.
TINY = ["--cfg", "demo", "--cbase", "256", "--cmax", "16", "--map-depth", "1", "--workers", "0", "--no-progress"]


def run_cli(*args: str) -> int:
    return main(["train", *map(str, args)])


def assert_same_numbers(a: list[dict], b: list[dict], rel: float) -> None:
    assert [s["tick"] for s in a] == [s["tick"] for s in b]
    assert [s["kimg"] for s in a] == [s["kimg"] for s in b]
    for sa, sb in zip(a, b):
        keys = [k for k in sa if k.startswith(("Loss/", "Progress/"))]
        assert keys and set(keys) == {k for k in sb if k.startswith(("Loss/", "Progress/"))}
        for k in keys:
            assert sb[k] == pytest.approx(sa[k], rel=rel, abs=1e-7), (sa["tick"], k)


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_demo_config_trains_2_kimg_and_writes_a_complete_run(data64, tmp_path):
    out = tmp_path / "runs"
    assert run_cli("--cfg", "demo", "--data", data64, "--cond", "--kimg", 2, "--outdir", out, "--no-progress") == 0
    run = only_run(out)
    assert run.name == "00000-demo-fm64-gpus1-batch32-gamma0.05"
    for name in ("training_options.json", "log.txt", "reals.png", "fakes_init.png", "fakes000000.png", "samples.png",
                 "truncation.png", "losses.png", "network-snapshot-000000.032.safetensors", "network-snapshot-000002.016.safetensors"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    lines = run_stats(run)
    assert [s["tick"] for s in lines] == [0, 1, 2]
    assert lines[-1]["kimg"] == pytest.approx(2.016)
    for key in ("Timing/sec_per_kimg", "Timing/sec_per_tick", "Resources/peak_cpu_mem_gb", "Progress/augment", "Progress/lr_G",
                "Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/pl_penalty", "Loss/scores/real", "Loss/signs/fake"):
        assert key in lines[-1], key
    net = load_network(run / "network-snapshot-000002.016.safetensors")
    assert net.G_ema.c_dim == 10 and net.G_ema.img_channels == 1 and net.D is not None
    _, extra = read_checkpoint(run / "network-snapshot-000002.016.safetensors")
    assert extra["training"]["cur_nimg"] == 2016 and extra["training_options"]["cfg"] == "demo"
    aux = read_aux_tensors(run / "network-snapshot-000002.016.safetensors")
    assert "pl_mean" in aux and any(k.startswith("opt_G.") for k in aux) and any(k.startswith("opt_D.") for k in aux)
    assert main(["generate", "--network", str(run / "network-snapshot-000002.016.safetensors"), "--seeds", "0-1", "--class", "3",
                 "--outdir", str(tmp_path / "gen")]) == 0


def test_interrupted_and_resumed_run_repeats_the_uninterrupted_numbers(data64, tmp_path):
    common = [*TINY, "--data", data64, "--cond", "--batch", 16, "--kimg", 0.64, "--tick", 0.128, "--snap", 2, "--aug", "ada"]
    assert run_cli(*common, "--outdir", tmp_path / "a") == 0
    reference = run_stats(only_run(tmp_path / "a"))
    assert len(reference) == 6

    out_b = tmp_path / "b"
    cmd = [sys.executable, "-m", "stylegan", "train", *map(str, common), "--outdir", str(out_b)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # interrupt once two ticks are logged, mid-way through the run
        runs = list(out_b.glob("*/stats.jsonl")) if out_b.exists() else []
        if runs and len(runs[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "interrupted at" in output and "--resume" in output
    run_b = only_run(out_b)
    assert len(run_stats(run_b)) < 6, "the run finished before the interrupt; nothing was tested"

    assert run_cli("--resume", run_b) == 0
    assert_same_numbers(reference, run_stats(run_b), rel=1e-5)
    a_last = only_run(tmp_path / "a") / "network-snapshot-000000.640.safetensors"
    b_last = run_b / "network-snapshot-000000.640.safetensors"
    nets_a, _ = read_checkpoint(a_last)
    nets_b, _ = read_checkpoint(b_last)
    for name in ("G", "D", "G_ema"):
        for key, value in nets_a[name][1].items():
            torch.testing.assert_close(nets_b[name][1][key], value, rtol=1e-5, atol=1e-6)


def test_continuing_with_another_batch_size_and_length(data64, tmp_path):
    assert run_cli(*TINY, "--data", data64, "--cond", "--batch", 16, "--kimg", 0.128, "--tick", 0.064, "--outdir", tmp_path) == 0
    run = only_run(tmp_path)
    assert run_cli("--resume", run, "--batch", 8, "--batch-gpu", 4, "--mbstd-group", 4) == 2  # a fixed setting
    assert run_cli("--resume", run, "--batch", 8, "--kimg", 0.192) == 0
    lines = run_stats(run)
    assert lines[-1]["kimg"] == pytest.approx(0.192)
    assert [s["tick"] for s in lines] == list(range(len(lines)))
    log = (run / "log.txt").read_text()
    assert "continuing" in log and "batch:     8 total" in log


def test_two_processes_through_torchrun_follow_the_single_process_trajectory(data64, tmp_path):
    # Float rounding differs between the two set-ups at the 1e-7 level; GAN training amplifies it, the more
    # the higher the learning rate (at the demo's 0.005 the path-length terms drift apart by ~1e-3 by the
    # 9th minibatch), so this comparison runs at 0.002, and over 8 minibatches (both G regularisation rounds,
    # one D round): by the 12th the gap depends on the processor's kernels (measured at tick 3: 1.8e-5 with
    # AVX-512, 8.6e-3 with ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41; at tick 2 at most 1.5e-5).
    common = [*TINY, "--data", data64, "--cond", "--batch", 8, "--batch-gpu", 4, "--kimg", 0.064, "--tick", 0.032, "--snap", 10,
              "--glr", 0.002, "--dlr", 0.002]
    single = subprocess.run([sys.executable, "-m", "stylegan", "train", *map(str, common), "--outdir", str(tmp_path / "one")],
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout + single.stderr
    # --gpus 2 launches torchrun (gloo on CPU) with two copies of this command
    double = subprocess.run([sys.executable, "-m", "stylegan", "train", *map(str, common), "--gpus", "2", "--outdir", str(tmp_path / "two")],
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stdout + double.stderr
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    assert "gpus2" in two.name
    assert_same_numbers(run_stats(one), run_stats(two), rel=1e-4)
    a, _ = read_checkpoint(one / "network-snapshot-000000.064.safetensors")
    b, _ = read_checkpoint(two / "network-snapshot-000000.064.safetensors")
    for key, value in a["G_ema"][1].items():
        if key != "mapping.w_avg":  # the W average moves per accumulation round, so it differs slightly
            torch.testing.assert_close(b["G_ema"][1][key], value, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b["G_ema"][1]["mapping.w_avg"], a["G_ema"][1]["mapping.w_avg"], rtol=0.05, atol=0.05)


def test_fine_tuning_reads_the_architecture_and_freezes_d_layers(data64, tmp_path):
    assert run_cli(*TINY, "--data", data64, "--cond", "--kimg", 0.032, "--outdir", tmp_path / "src") == 0
    source = next(only_run(tmp_path / "src").glob("network-snapshot-*.safetensors"))
    # A different preset's network settings do not apply: the architecture comes from the file.
    assert run_cli("--cfg", "demo", "--data", data64, "--cond", "--resume", source, "--freezed", 2, "--kimg", 0.064,
                   "--workers", 0, "--no-progress", "--outdir", tmp_path / "ft") == 0
    run = only_run(tmp_path / "ft")
    src_nets, _ = read_checkpoint(source)
    new_nets, _ = read_checkpoint(next(run.glob("network-snapshot-*.safetensors")))
    assert new_nets["G"][0]["config"]["synthesis"]["channel_max"] == 16
    assert new_nets["D"][0]["config"]["freeze_layers"] == 2
    d_src, d_new = src_nets["D"][1], new_nets["D"][1]
    frozen = [k for k in d_src if k.startswith(("b32.fromrgb.", "b32.conv0."))]  # the first two layers
    trained = [k for k in d_src if k.startswith("b4.") and k.endswith("weight")]
    assert frozen and all(torch.equal(d_src[k], d_new[k]) for k in frozen)
    assert any(not torch.equal(d_src[k], d_new[k]) for k in trained)
    options = json.loads((run / "training_options.json").read_text())
    assert options["resume"] == str(source) and options["ema_rampup"] is None and options["ada_kimg"] == 100


def test_fine_tuning_a_mismatched_network_names_the_setting(data64, tmp_path, capsys):
    rgb = tmp_path / "rgb.safetensors"
    assert main(["init", "--preset", "sg2-32", "--out", str(rgb)]) == 0
    assert run_cli("--data", data64, "--cond", "--resume", rgb, "--outdir", tmp_path / "runs") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image channels is 3 but the dataset's is 1" in err[0] and str(rgb) in err[0]
    assert not (tmp_path / "runs").exists()


def test_labels_and_cond_must_agree(data64, tmp_path, capsys):
    unlabelled = tmp_path / "nolabels.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=unlabelled, max_images=16, labels="none"), log=lambda s: None)
    assert run_cli(*TINY, "--data", unlabelled, "--cond", "--outdir", tmp_path / "r", "--dry-run") == 2
    err = capsys.readouterr().err
    assert "--cond" in err and "has no labels" in err
    assert run_cli(*TINY, "--data", data64, "--outdir", tmp_path / "r", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "has 10 labels; training an unconditional model (pass --cond" in out
    assert not (tmp_path / "r").exists()


def test_dry_run_prints_the_resolved_preset(data64, tmp_path, capsys):
    assert run_cli("--cfg", "paper256", "--data", data64, "--cond", "--dry-run", "--outdir", tmp_path) == 0
    out = capsys.readouterr().out
    options = json.loads(out[out.index("{"):])
    assert options["batch"] == 64 and options["batch_gpu"] == 8 and options["loss"]["r1_gamma"] == 1
    assert options["ema_kimg"] == 20 and options["ema_rampup"] is None and options["glr"] == 0.0025
    assert options["D"]["config"]["mbstd_group_size"] == 8 and options["G"]["config"]["synthesis"]["channel_base"] == 16384
    assert not any(tmp_path.iterdir())


def test_bad_data_is_one_line_and_exit_2(tmp_path, capsys):
    assert run_cli("--data", tmp_path / "missing.zip", "--outdir", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.zip" in err[0]


@pytest.mark.parametrize("argv, message", [
    (["--resume", "nothere"], "--resume nothere: no such file or folder"),
    (["--resume", "NET"], "--data is required (a dataset .zip or folder, or builtin:fashion-mnist) to fine-tune NET"),
    (["--data", "DATA", "--cbase", "16"], "--cbase 16: must be at least the resolution 32"),
])
def test_runs_that_cannot_start_name_the_flag_and_write_nothing(argv, message, data64, tmp_path, capsys):
    net = tmp_path / "net.safetensors"
    assert main(["init", "--out", str(net)]) == 0
    capsys.readouterr()
    argv = [str(net) if a == "NET" else str(data64) if a == "DATA" else a for a in argv]
    assert run_cli(*TINY, *argv, "--outdir", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.replace("NET", str(net)) in err
    assert not (tmp_path / "runs").exists()


def test_metrics_are_computed_at_snapshots(data64, tmp_path):
    from stylegan.metrics import registry

    calls = []

    @registry.register_metric
    def test_mean_pixel(opts: registry.MetricOptions) -> dict[str, float]:
        z = torch.randn([4, opts.G.z_dim], device=opts.device)
        c = torch.eye(opts.G.c_dim, device=opts.device)[torch.arange(4) % opts.G.c_dim]
        calls.append(opts.dataset)
        return {"test_mean_pixel": float(opts.G(z, c, noise_mode="const").mean())}

    try:
        assert run_cli(*TINY, "--data", data64, "--cond", "--kimg", 0.064, "--tick", 0.032, "--snap", 1,
                       "--metrics", "test_mean_pixel", "--outdir", tmp_path) == 0
    finally:
        registry.METRICS.pop("test_mean_pixel")
    run = only_run(tmp_path)
    lines = [json.loads(ln) for ln in (run / "metric-test_mean_pixel.jsonl").read_text().splitlines()]
    assert len(lines) == len(calls) == len(run_stats(run)) == 2  # a snapshot every tick
    assert set(lines[0]) >= {"results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl", "timestamp"}
    assert lines[-1]["snapshot_pkl"] == "network-snapshot-000000.064.safetensors"
    assert calls[0] == str(data64)


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_configs_train(data64, tmp_path, cfg):
    assert run_cli("--cfg", cfg, "--data", data64, "--cond", "--cbase", 512, "--cmax", 16, "--batch", 8, "--gamma", 1, "--kimg", 0.008,
                   "--workers", 0, "--no-progress", "--outdir", tmp_path) == 0
    run = only_run(tmp_path)
    lines = run_stats(run)
    assert "Loss/G/loss" in lines[-1] and "Loss/pl_penalty" not in lines[-1]
    nets, extra = read_checkpoint(next(run.glob("network-snapshot-*.safetensors")))
    assert nets["G"][0]["family"] == "stylegan3" and extra["training_options"]["loss"]["blur_init_sigma"] == (10 if cfg == "stylegan3-r" else 0)
    ema = [v for k, v in nets["G"][1].items() if k.endswith("magnitude_ema")]
    assert ema and any(float(v) != 1.0 for v in ema)  # the magnitude EMAs were updated in the D phases


def test_unknown_metric_is_refused_before_any_work(data64, tmp_path, capsys):
    assert run_cli(*TINY, "--data", data64, "--metrics", "fid99k_sharp", "--outdir", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "fid99k_sharp" in err and "available:" in err and not (tmp_path / "r").exists()

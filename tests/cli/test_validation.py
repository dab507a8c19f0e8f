"""Every numeric, seed, device and output-path flag of every command is checked while the command line is parsed:
a bad value is one line on stderr naming the flag, exit status 2, and nothing is written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stylegan.cli.main import COMMANDS, main

NET = "NET"  # replaced by a real network file
OUT = "OUT"  # replaced by a folder (or file) inside tmp_path that must not appear

TRAIN = ["train", "--cfg", "demo", "--data", "data.zip", "--outdir", OUT]
GENERATE = ["generate", "--network", NET, "--seeds", "0", "--outdir", OUT]
PROJECT = ["project", "--network", NET, "--target", "t.png", "--outdir", OUT]

CASES = [
    # train: the cases and every other numeric flag
    (TRAIN + ["--mbstd-group", "0"], "argument --mbstd-group: must be >= 1, got 0"),
    (TRAIN + ["--gpus", "0"], "argument --gpus: must be >= 1, got 0"),
    (TRAIN + ["--cbase", "0"], "argument --cbase: must be >= 1, got 0"),
    (TRAIN + ["--cmax", "-3"], "argument --cmax: must be >= 1, got -3"),
    (TRAIN + ["--map-depth", "0"], "argument --map-depth: must be >= 1"),
    (TRAIN + ["--batch", "0"], "argument --batch: must be >= 1"),
    (TRAIN + ["--batch-gpu", "x"], "argument --batch-gpu: expected a whole number, got 'x'"),
    (TRAIN + ["--kimg", "0"], "argument --kimg: must be > 0, got 0"),
    (TRAIN + ["--kimg", "-1"], "argument --kimg: must be > 0, got -1"),
    (TRAIN + ["--kimg", "inf"], "argument --kimg: must be a finite number, got 'inf'"),
    (TRAIN + ["--tick", "0"], "argument --tick: must be > 0"),
    (TRAIN + ["--snap", "0"], "argument --snap: must be >= 1"),
    (TRAIN + ["--gamma", "-1"], "argument --gamma: must be >= 0, got -1"),
    (TRAIN + ["--gamma", "nan"], "argument --gamma: must be a finite number, got 'nan'"),
    (TRAIN + ["--glr", "-1"], "argument --glr: must be > 0, got -1"),
    (TRAIN + ["--dlr", "0"], "argument --dlr: must be > 0, got 0"),
    (TRAIN + ["--ema-kimg", "0"], "argument --ema-kimg: must be > 0"),
    (TRAIN + ["--aug", "fixed", "--p", "2"], "argument --p: must be between 0 and 1, got 2"),
    (TRAIN + ["--target", "5"], "argument --target: must be between 0 and 1, got 5"),
    (TRAIN + ["--g-reg-interval", "-1"], "argument --g-reg-interval: must be >= 0"),
    (TRAIN + ["--d-reg-interval", "-1"], "argument --d-reg-interval: must be >= 0"),
    (TRAIN + ["--grow-start", "0"], "argument --grow-start: must be >= 1"),
    (TRAIN + ["--grow-kimg", "600,-1"], "argument --grow-kimg: must be >= 0, got -1"),
    (TRAIN + ["--freezed", "-1"], "argument --freezed: must be >= 0"),
    (TRAIN + ["--workers", "-1"], "argument --workers: must be >= 0, got -1"),
    (TRAIN + ["--seed", "-1"], "argument --seed: must be between 0 and 4294967295, got -1"),
    (TRAIN + ["--seed", str(2**32)], "argument --seed: must be between 0 and 4294967295"),
    (TRAIN + ["--device", "foo"], "argument --device: unknown device 'foo'"),
    (TRAIN + ["--device", "cuda"], "argument --device: cuda: CUDA is not available"),
    (TRAIN + ["--tf32", "maybe"], "argument --tf32: expected a boolean (1/0, true/false), got 'maybe'"),
    (TRAIN + ["--nobench", "2"], "argument --nobench: expected a boolean (1/0, true/false), got '2'"),
    (TRAIN + ["--to", "24"], "argument --to: must be a power of two between 4 and 8192, got 24"),
    (TRAIN + ["--head-layers", "2"], "argument --head-layers: must be >= 3, got 2"),
    (TRAIN + ["--cls-weight", "-1"], "argument --cls-weight: must be >= 0, got -1"),
    (TRAIN + ["--feature-weights", "no-such-file.pth"], "argument --feature-weights: no-such-file.pth: no such file or folder"),
    # generate
    (GENERATE + ["--device", "foo"], "argument --device: unknown device 'foo'"),
    (GENERATE + ["--device", "cuda:0"], "argument --device: cuda:0: CUDA is not available"),
    (GENERATE + ["--device", "meta"], "argument --device: meta: not supported"),
    (["generate", "--network", NET, "--seeds", str(2**32), "--outdir", OUT], "argument --seeds: seed 4294967296 out of range"),
    (["generate", "--network", NET, "--seeds", "0-99999999", "--outdir", OUT], "more than 1,000,000 numbers"),
    (GENERATE + ["--trunc", "nan"], "argument --trunc: must be a finite number, got 'nan'"),
    (GENERATE + ["--trunc", "inf"], "argument --trunc: must be a finite number, got 'inf'"),
    (GENERATE + ["--trunc-cutoff", "-1"], "argument --trunc-cutoff: must be >= 0"),
    (GENERATE + ["--class", "-1"], "argument --class: must be >= 0"),
    (GENERATE + ["--rotate", "nan"], "argument --rotate: must be a finite number"),
    (GENERATE + ["--translate", "0,inf"], "argument --translate: must be a finite number"),
    (GENERATE + ["--batch", "0"], "argument --batch: must be >= 1"),
    (GENERATE + ["--grid", "0x4"], "argument --grid: expected RxC with R, C >= 1"),
    # init and convert: values and the output format
    (["init", "--channels", "0", "--out", OUT + ".safetensors"], "argument --channels: must be >= 1, got 0"),
    (["init", "--c-dim", "-1", "--out", OUT + ".safetensors"], "argument --c-dim: must be >= 0, got -1"),
    (["init", "--seed", "-5", "--out", OUT + ".safetensors"], "argument --seed: must be between 0 and 4294967295"),
    (["init", "--out", OUT + ".pt"], "argument --out: OUT.pt: expected a .safetensors file"),
    (["convert", NET, OUT + ".pkl"], "OUT.pkl: unknown output format; use .safetensors (native) or .pt/.pth (rosinality)"),
    (["convert", NET, OUT + ".pt", "--to", "native"], "OUT.pt: the native format is written as .safetensors"),
    (["convert", NET, OUT + ".safetensors", "--to", "rosinality"], "the rosinality format is written as .pt or .pth"),
    # metrics
    (["metrics", "--network", NET, "--metrics", "fid50k_full", "--num-gen", "0"], "argument --num-gen: must be >= 1"),
    (["metrics", "--network", NET, "--metrics", "fid50k_full", "--samples", "-2"], "argument --samples: must be >= 1"),
    (["metrics", "--network", NET, "--metrics", "fid50k_full", "--batch", "0"], "argument --batch: must be >= 1"),
    (["metrics", "--network", NET, "--metrics", "fid50k_full", "--seed", "-1"], "argument --seed: must be between 0"),
    (["metrics", "--network", NET, "--metrics", "fid50k_full", "--device", "foo"], "argument --device: unknown device"),
    (["metrics", "--images", OUT, "--metrics", "eqt50k_int"], "--images: eqt50k_int needs a generator (--network)"),
    (["metrics", "--images", OUT, "--metrics", "pfd5k_full"], "pfd5k_full needs real images (--data)"),
    # dataset
    (["dataset", "--source", "builtin:fashion-mnist-test", "--dest", OUT + ".zip", "--max-images", "0"],
     "argument --max-images: must be >= 1, got 0"),
    # project and attribute
    (PROJECT + ["--num-steps", "0"], "argument --num-steps: must be >= 1"),
    (PROJECT + ["--noise-reg", "-1"], "argument --noise-reg: must be >= 0"),
    (PROJECT + ["--seed", "-1"], "argument --seed: must be between 0"),
    (PROJECT + ["--class", "-2"], "argument --class: must be >= 0"),
    (PROJECT + ["--device", "foo"], "argument --device: unknown device"),
    (["attribute", "--network", NET, "--images", ".", "--outdir", OUT, "--generated", "-1"], "argument --generated: must be >= 0"),
    (["attribute", "--network", NET, "--images", ".", "--outdir", OUT, "--limit", "-1"], "argument --limit: must be >= 0"),
    # mix, video, truncation
    (["mix", "--network", NET, "--rows", "1", "--cols", str(2**32), "--outdir", OUT], "argument --cols: seed 4294967296 out of range"),
    (["mix", "--network", NET, "--rows", "1", "--cols", "2", "--trunc", "nan", "--outdir", OUT], "argument --trunc: must be a finite number"),
    (["video", "--network", NET, "--seeds", "0", "--w-frames", "0", "--output", OUT + ".mp4"], "argument --w-frames: must be >= 1, got 0"),
    (["video", "--network", NET, "--seeds", "0", "--num-keyframes", "0", "--output", OUT + ".mp4"], "argument --num-keyframes: must be >= 1"),
    (["video", "--network", NET, "--seeds", "0", "--fps", "0", "--output", OUT + ".mp4"], "argument --fps: must be > 0"),
    (["video", "--network", NET, "--seeds", "0", "--crf", "52", "--output", OUT + ".mp4"], "argument --crf: must be between 0 and 51, got 52"),
    (["video", "--network", NET, "--seeds", "0", "--noise-seed", "-1", "--output", OUT + ".mp4"], "argument --noise-seed: must be between 0"),
    (["video", "--network", NET, "--seeds", "0", "--output", OUT + ".avi"], "argument --output: OUT.avi: expected a .mp4 or .gif file"),
    (["truncation", "--network", NET, "--psi", "0.5,nan", "--outdir", OUT], "argument --psi: must be a finite number, got 'nan'"),
    (["truncation", "--network", NET, "--psi", "0.5,x", "--outdir", OUT], "argument --psi: expected a number, got 'x'"),
    (["truncation", "--network", NET, "--trunc-cutoff", "-1", "--outdir", OUT], "argument --trunc-cutoff: must be >= 0"),
    # samplesheet, serve, export
    (["samplesheet", "--network", NET, "--classes", "0", "--samples-per-class", "0", "--outdir", OUT], "argument --samples-per-class: must be >= 1"),
    (["samplesheet", "--network", NET, "--classes", "0", "--seed", "-1", "--outdir", OUT], "argument --seed: must be between 0"),
    (["samplesheet", "--network", NET, "--classes", "0", "--trunc", "inf", "--outdir", OUT], "argument --trunc: must be a finite number"),
    (["samplesheet", "--network", NET, "--classes", "0", "--grid-width", "0", "--outdir", OUT], "argument --grid-width: must be >= 1"),
    (["samplesheet", "--network", NET, "--classes", "0", "--device", "foo", "--outdir", OUT], "argument --device: unknown device"),
    (["serve", "--port", "70000"], "argument --port: must be between 0 and 65535, got 70000"),
    (["serve", "--max-upload-mb", "0"], "argument --max-upload-mb: must be >= 1, got 0"),
    (["serve", "--device", "cuda:1"], "argument --device: cuda:1: CUDA is not available"),
    (["export", "--network", NET, "--format", "onnx", "--opset", "16", "--out", OUT + ".onnx"], "argument --opset: must be >= 17, got 16"),
    (["export", "--network", NET, "--format", "torchscript", "--trunc-cutoff", "-1", "--out", OUT + ".pt"], "argument --trunc-cutoff: must be >= 0"),
    (["export", "--network", NET, "--format", "torchscript", "--out", OUT + ".onnx"], "OUT.onnx: a torchscript file ends in .pt or .pth"),
    # analyze
    (["analyze", "ppl", "--network", NET, "--samples", "1", "--outdir", OUT], "argument --samples: must be >= 2, got 1"),
    (["analyze", "jacobian", "--network", NET, "--samples", "0", "--outdir", OUT], "argument --samples: must be >= 1"),
    (["analyze", "droplets", "--network", NET, "--seed", str(2**32), "--outdir", OUT], "argument --seed: must be between 0"),
    (["analyze", "spectrum", "--network", NET, "--std", "0", "--outdir", OUT], "argument --std: must be > 0, got 0"),
    (["analyze", "spectrum", "--network", NET, "--beta", "-1", "--outdir", OUT], "argument --beta: must be >= 0"),
    (["analyze", "resolution-usage", "--network", NET, "--samples", "0", "--outdir", OUT], "argument --samples: must be >= 1"),
]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    assert main(["init", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_values_are_one_line_exit_2_and_nothing_is_written(argv, message, net, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(net) if a == NET else a.replace(OUT, str(tmp_path / "out")) for a in argv]
    message = message.replace(OUT, str(tmp_path / "out"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith(f"stylegan {argv[0]}")
    assert not list(tmp_path.iterdir()), "something was written"


def test_the_table_covers_every_command():
    assert {argv[0] for argv, _ in CASES} >= set(COMMANDS) - {"info"}  # info has no values to check


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylegan", "train", "--data", "x.zip", "--kimg", "0", "--outdir", str(tmp_path / "runs")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "stylegan train: error: argument --kimg: must be > 0, got 0\n"
    assert not (tmp_path / "runs").exists()

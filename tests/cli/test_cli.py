"""End-to-end CLI runs on tiny networks, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    assert main(["init", "--preset", "sg2-32", "--seed", "1", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def tiny_cond(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "cond.safetensors"
    assert main(["init", "--preset", "sg2-32", "--c-dim", "3", "--out", str(path)]) == 0
    return path


def test_generate_grid_and_raw(tiny, tmp_path):
    assert main(["generate", "--network", str(tiny), "--seeds", "0-3,9,10", "--trunc", "0.7", "--grid", "2x3",
                 "--raw", "--outdir", str(tmp_path), "--device", "cpu", "--batch", "4"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"seed{s:04d}.{e}" for s in (0, 1, 2, 3, 9, 10) for e in ("png", "npy")] + ["grid.png"])
    assert Image.open(tmp_path / "grid.png").size == (3 * 32, 2 * 32)
    raw = np.load(tmp_path / "seed0009.npy")
    assert raw.shape == (3, 32, 32) and raw.dtype == np.float32
    png = np.asarray(Image.open(tmp_path / "seed0009.png"))
    expected = np.clip(raw.transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert np.array_equal(png, expected)


def test_seeds_are_reproducible_and_batch_independent(tiny, tmp_path):
    for batch, sub in ((1, "a"), (3, "b")):
        assert main(["generate", "--network", str(tiny), "--seeds", "5-7", "--raw", "--outdir", str(tmp_path / sub),
                     "--batch", str(batch), "--device", "cpu"]) == 0
    for s in (5, 6, 7):
        np.testing.assert_allclose(np.load(tmp_path / "a" / f"seed{s:04d}.npy"), np.load(tmp_path / "b" / f"seed{s:04d}.npy"), atol=1e-5)


def test_random_noise_is_seeded(tiny, tmp_path):
    for sub in ("a", "b"):
        assert main(["generate", "--network", str(tiny), "--seeds", "1", "--noise-mode", "random", "--raw",
                     "--outdir", str(tmp_path / sub), "--device", "cpu"]) == 0
    assert np.array_equal(np.load(tmp_path / "a" / "seed0001.npy"), np.load(tmp_path / "b" / "seed0001.npy"))


def test_conditional_needs_a_valid_class(tiny_cond, tmp_path, capsys):
    assert main(["generate", "--network", str(tiny_cond), "--seeds", "0", "--outdir", str(tmp_path)]) == 2
    assert "conditional (c_dim=3): pass --class K" in capsys.readouterr().err
    assert main(["generate", "--network", str(tiny_cond), "--seeds", "0", "--class", "3", "--outdir", str(tmp_path)]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["generate", "--network", str(tiny_cond), "--seeds", "0", "--class", "2", "--outdir", str(tmp_path)]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0-x"], "bad number list"),
    (["--seeds", "0-3", "--grid", "3x3"], "R*C = number of seeds (4)"),
    (["--seeds", "0", "--class", "1"], "unconditional"),
    (["--seeds", "0", "--trunc-cutoff", "99"], "between 0 and num_ws=8"),
])
def test_generate_argument_errors(tiny, tmp_path, capsys, argv, message):
    assert main(["generate", "--network", str(tiny), "--outdir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_info_json(tiny, capsys):
    assert main(["info", str(tiny), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    g = report["networks"]["G_ema"]
    assert (g["family"], g["architecture"], g["resolution"], g["num_ws"], g["c_dim"]) == ("stylegan2", "skip", 32, 8, 0)
    assert g["parameters"] > 0 and report["networks"]["D"]["architecture"] == "resnet"


def test_info_official_folder(parity_dir, capsys):
    assert main(["info", str(parity_dir / "sg2_64_orig")]) == 0
    out = capsys.readouterr().out
    assert "official-folder" in out and "orig, 64x64x3" in out and "num_ws=10" in out


def test_bad_file_is_one_line_nonzero_no_traceback(tmp_path):
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"\x80\x04not a pickle")
    r = subprocess.run([sys.executable, "-m", "stylegan", "generate", "--network", str(bad), "--seeds", "0",
                        "--outdir", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_convert_pickle_to_native(parity_dir, tmp_path):
    from helpers import write_fixture_pickle

    from stylegan import load_network

    pkl = tmp_path / "net.pkl"
    write_fixture_pickle(parity_dir / "ada_sg2_32", pkl, tmp_path / "marker")
    assert main(["convert", str(pkl), str(tmp_path / "net.safetensors")]) == 0
    a, b = load_network(pkl), load_network(tmp_path / "net.safetensors")
    for name in ("G_ema", "D"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert a.G_ema.config == b.G_ema.config


def test_convert_refuses_to_overwrite_source(tiny, capsys):
    assert main(["convert", str(tiny), str(tiny)]) == 2
    assert "destination is the source" in capsys.readouterr().err


def test_convert_round_trip_through_rosinality(tiny, tmp_path):
    """native -> rosinality .pt -> native keeps G, D and G_ema identical (weights and outputs)."""
    import torch

    from stylegan import load_network

    pt, back = tmp_path / "net.pt", tmp_path / "back.safetensors"
    assert main(["convert", str(tiny), str(pt)]) == 0
    assert main(["convert", str(pt), str(back)]) == 0
    a, b = load_network(tiny), load_network(back)
    assert load_network(pt).source_format == "rosinality"
    for name in ("G", "G_ema", "D"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    z = torch.randn(4, 64)
    torch.testing.assert_close(b.G_ema(z, None, noise_mode="const"), a.G_ema(z, None, noise_mode="const"), rtol=0, atol=0)
    img = a.G_ema(z, None, noise_mode="const")
    torch.testing.assert_close(b.D(img, None), a.D(img, None), rtol=0, atol=0)


def test_rosinality_training_checkpoint_with_args_namespace(tiny, tmp_path):
    """rosinality's train.py pickles its argparse.Namespace; weights-only loading must still accept it."""
    import argparse

    import torch

    from stylegan import load_network

    pt = tmp_path / "net.pt"
    assert main(["convert", str(tiny), str(pt)]) == 0
    ckpt = torch.load(pt, weights_only=True)
    ckpt["args"] = argparse.Namespace(size=32, lr=0.002, path="/data/lmdb")
    torch.save(ckpt, pt)
    assert load_network(pt).G_ema is not None


def test_convert_refuses_what_rosinality_cannot_express(parity_dir, tmp_path, capsys):
    assert main(["convert", str(parity_dir / "sg2_64_orig"), str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "cannot be written in rosinality's format" in err and err.count("\n") == 1
    assert not (tmp_path / "x.pt").exists()


def test_metrics_equivariance_on_stylegan3(parity_dir, tmp_path, capsys):
    out = tmp_path / "metrics.jsonl"
    assert main(["metrics", "--network", str(parity_dir / "sg3t_32"), "--metrics", "eqt50k_int,eqr50k",
                 "--samples", "6", "--batch", "2", "--device", "cpu", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["metric"] for x in lines] == ["eqt6_int", "eqr6"]  # the count is in the name, as for the other metrics
    assert [list(x) for x in lines] == [["results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl",
                                         "timestamp"]] * 2  # NVIDIA's metric-<name>.jsonl shape
    assert all(list(x["results"]) == [x["metric"]] and np.isfinite(x["results"][x["metric"]]) for x in lines)
    assert [json.loads(x) for x in out.read_text().splitlines()] == lines
    # the same numbers with another --batch (groups of 4 share a transform whatever the batch)
    assert main(["metrics", "--network", str(parity_dir / "sg3t_32"), "--metrics", "eqt50k_int,eqr50k",
                 "--num-gen", "6", "--batch", "5", "--device", "cpu"]) == 0
    again = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["results"] for x in again] == [x["results"] for x in lines]


def test_metrics_errors(tiny, capsys):
    assert main(["metrics", "--network", str(tiny), "--metrics", "fid99k"]) == 2
    assert "fid99k" in capsys.readouterr().err
    assert main(["metrics", "--network", str(tiny), "--metrics", "eqr50k", "--samples", "1", "--device", "cpu"]) == 2
    assert "EQ-R needs a StyleGAN3" in capsys.readouterr().err

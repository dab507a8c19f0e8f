"""`stylegan project`, `stylegan attribute` and `generate --projected-w` end to end (tiny networks, pixel MSE)."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan.cli.project as project_cli
from stylegan import load_network
from stylegan.cli.main import main as cli_main
from stylegan.editing.latents import load_projected_w
from stylegan.editing.projection import load_projection
from stylegan.io.load import Network
from stylegan.models import Generator, GeneratorConfig, MappingConfig, SynthesisConfig


@pytest.fixture
def sg2(parity_dir):
    return parity_dir / "sg2_32"


@pytest.fixture
def target(tmp_path):
    """A 40x48 RGB image (centre-cropped and resized to 32x32 by the command)."""
    rng = np.random.RandomState(0)
    path = tmp_path / "target.jpg"
    Image.fromarray(rng.randint(0, 256, [40, 48, 3], dtype=np.uint8)).resize((48, 40)).save(path)
    return path


def _project(net, target, outdir, *extra):
    return cli_main(["project", "--network", str(net), "--target", str(target), "--distance", "mse", "--device", "cpu",
                     "--outdir", str(outdir), *map(str, extra)])


def test_project_end_to_end_and_generate(sg2, target, tmp_path, capsys):
    out = tmp_path / "out"
    assert _project(sg2, target, out, "--num-steps", 6) == 0
    stdout = capsys.readouterr().out
    assert "pixel MSE" in stdout and "not LPIPS" in stdout
    for name in ("projected_w.npz", "target.png", "proj.png", "projection.json"):
        assert (out / name).is_file(), name
    info = json.loads((out / "projection.json").read_text())
    assert info["metric"] == "mse" and "not LPIPS" in info["metric_name"] and info["steps"] == 6 and info["space"] == "w"
    G = load_network(sg2).generator
    ws = load_projected_w(out / "projected_w.npz", G)
    assert ws.shape == (1, G.num_ws, G.w_dim) and torch.equal(ws, ws[:, :1].repeat(1, G.num_ws, 1))
    assert Image.open(out / "target.png").size == (32, 32)
    assert cli_main(["generate", "--network", str(sg2), "--projected-w", str(out / "projected_w.npz"),
                     "--outdir", str(tmp_path / "gen"), "--device", "cpu", "--raw"]) == 0
    assert np.array_equal(np.array(Image.open(tmp_path / "gen" / "proj00.png")), np.array(Image.open(out / "proj.png")))
    assert (tmp_path / "gen" / "proj00.npy").is_file()
    # Without the optimised noise maps the image differs: generate really used the stored ones.
    assert cli_main(["generate", "--network", str(sg2), "--projected-w", str(out / "projected_w.npz"), "--noise-mode", "none",
                     "--outdir", str(tmp_path / "gen2"), "--device", "cpu"]) == 0
    assert not np.array_equal(np.array(Image.open(tmp_path / "gen2" / "proj00.png")), np.array(Image.open(out / "proj.png")))


def test_ctrl_c_saves_and_resume_is_exact(sg2, target, tmp_path, monkeypatch, capsys):
    assert _project(sg2, target, tmp_path / "full", "--num-steps", 10, "--seed", 5) == 0
    original = project_cli.project

    def interrupted_project(*args, callback, **kwargs):
        def cb(s):
            if s.step == 4:
                signal.raise_signal(signal.SIGINT)
            return callback(s)
        return original(*args, callback=cb, **kwargs)

    monkeypatch.setattr(project_cli, "project", interrupted_project)
    part = tmp_path / "part"
    assert _project(sg2, target, part, "--num-steps", 10, "--seed", 5) == 0
    assert "--resume" in capsys.readouterr().out
    assert load_projection(part / "projected_w.npz").step == 4
    assert json.loads((part / "projection.json").read_text())["steps"] == 4
    monkeypatch.setattr(project_cli, "project", original)
    assert _project(sg2, target, part, "--resume", part / "projected_w.npz") == 0
    full, resumed = load_projection(tmp_path / "full" / "projected_w.npz"), load_projection(part / "projected_w.npz")
    assert resumed.step == 10
    assert (full.ws - resumed.ws).abs().max() <= 1e-6
    assert _project(sg2, target, part, "--resume", part / "projected_w.npz", "--space", "w+") == 2
    assert "--space" in capsys.readouterr().err


def _save_generator(path, img_channels):
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, img_channels=img_channels,
                                  mapping=MappingConfig(num_layers=1), synthesis=SynthesisConfig(channel_base=64, channel_max=16)))
    Network(G_ema=G).save(path)
    return path


def test_target_errors(sg2, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert _project(sg2, bad, tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "cannot read" in err and len(err.strip().splitlines()) == 1
    assert _project(sg2, tmp_path / "missing.png", tmp_path / "o") == 2
    assert "no such file" in capsys.readouterr().err
    deep = tmp_path / "deep.png"
    Image.fromarray(np.zeros([8, 8], np.uint16)).save(deep)  # 16-bit grayscale
    assert _project(sg2, deep, tmp_path / "o") == 2
    assert str(deep) in capsys.readouterr().err
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(rgb)
    net4 = _save_generator(tmp_path / "g4.safetensors", 4)
    assert _project(net4, rgb, tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert str(rgb) in err and "4 channel" in err


def test_channel_conversion_one_channel_network(tmp_path):
    net1 = _save_generator(tmp_path / "g1.safetensors", 1)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full([12, 12, 4], 200, np.uint8)).save(rgba)
    assert _project(net1, rgba, tmp_path / "o", "--num-steps", 3) == 0
    assert Image.open(tmp_path / "o" / "target.png").mode == "L"
    assert Image.open(tmp_path / "o" / "proj.png").mode == "L"


def test_missing_lpips_weights(sg2, target, tmp_path, monkeypatch, capsys):
    import stylegan.metrics.detectors as detectors

    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(detectors, "fetch_url", offline)
    rc = cli_main(["project", "--network", str(sg2), "--target", str(target), "--outdir", str(tmp_path / "o"), "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--distance mse" in err and "--vgg16" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "projected_w.npz").exists()


def test_attribute(tmp_path, capsys):
    net = _save_generator(tmp_path / "g.safetensors", 3)
    images = tmp_path / "real"
    images.mkdir()
    rng = np.random.RandomState(1)
    for i in range(3):
        Image.fromarray(rng.randint(0, 256, [10, 10, 3], dtype=np.uint8)).save(images / f"r{i}.png")
    (images / "notes.txt").write_text("ignored")
    rc = cli_main(["attribute", "--network", str(net), "--images", str(images), "--generated", "2", "--limit", "2",
                   "--num-steps", "3", "--distance", "mse", "--device", "cpu", "--outdir", str(tmp_path / "a")])
    assert rc == 0
    assert "not LPIPS" in capsys.readouterr().out
    lines = (tmp_path / "a" / "attribution.csv").read_text().splitlines()
    assert lines[0] == "file,distance,kind" and len(lines) == 5
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["real", "real", "generated", "generated"]
    info = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert info["real"]["count"] == 2 and info["generated"]["count"] == 2 and info["metric"] == "mse"
    dists = [float(line.split(",")[1]) for line in lines[3:]]
    assert info["generated"]["mean"] == pytest.approx(sum(dists) / 2)
    assert Image.open(tmp_path / "a" / "attribution.png").format == "PNG"


def test_generate_needs_seeds_or_projected_w(sg2, tmp_path, capsys):
    assert cli_main(["generate", "--network", str(sg2), "--outdir", str(tmp_path)]) == 2
    assert "--projected-w" in capsys.readouterr().err


def test_save_video(sg2, target, tmp_path):
    pytest.importorskip("stylegan.io.video")
    out = tmp_path / "v"
    assert _project(sg2, target, out, "--num-steps", 4, "--save-video") == 0
    assert (out / "proj.mp4").is_file() or (out / "proj.gif").is_file()


def test_a_resume_file_of_another_network_is_refused_before_anything_is_written(parity_dir, sg2, target, tmp_path, capsys):
    first = tmp_path / "first"
    assert _project(parity_dir / "sg2_64_orig", target, first, "--num-steps", 2) == 0
    capsys.readouterr()
    out = tmp_path / "second"
    assert _project(sg2, target, out, "--resume", first / "projected_w.npz") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume {first / 'projected_w.npz'}: the saved noise maps (9) do not match this network's (7)" in err
    assert not out.exists()

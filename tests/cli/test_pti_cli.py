"""`stylegan project --pti-steps` end to end (parity networks, pixel MSE, tiny step counts): the tuned network is
written beside projected_w.npz and read by generate, video and serve; Ctrl-C and --resume end with the same weights;
bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan.cli.project as project_cli
from stylegan import load_network
from stylegan.cli.main import main as cli_main
from stylegan.editing.pti import PTI_FILE, load_pti
from stylegan.io.load import Network
from stylegan.models import stylegan_xl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "c324a34"


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "target.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, [32, 32, 3], dtype=np.uint8)).save(path)
    return path


def _project(net, target, outdir, *extra):
    return cli_main(["project", "--network", str(net), "--target", str(target), "--distance", "mse", "--device", "cpu",
                     "--outdir", str(outdir), *map(str, extra)])


def test_pti_writes_a_network_that_generate_video_and_serve_read(parity_dir, target, tmp_path, capsys):
    sg2 = parity_dir / "sg2_32"
    out = tmp_path / "out"
    assert _project(sg2, target, out, "--num-steps", 3, "--pti-steps", 3, "--pti-reg-input", "rescaled") == 0
    stdout = capsys.readouterr().out
    assert "pivotal tuning: pixel MSE" in stdout and PTI_FILE in stdout
    info = json.loads((out / "projection.json").read_text())
    pti = info["pti"]
    assert pti["steps"] == pti["num_steps"] == 3 and pti["finished"] and pti["reg_input"] == "rescaled"
    assert pti["distance_before"] == pytest.approx(info["distance"]) and pti["distance"] < pti["distance_before"]
    tuned = load_network(out / PTI_FILE)
    assert tuned.G is None and tuned.D is None and tuned.generator.num_ws == load_network(sg2).generator.num_ws
    assert cli_main(["generate", "--network", str(out / PTI_FILE), "--projected-w", str(out / "projected_w.npz"),
                     "--outdir", str(tmp_path / "gen"), "--device", "cpu"]) == 0
    assert np.array_equal(np.array(Image.open(tmp_path / "gen" / "proj00.png")), np.array(Image.open(out / "proj_pti.png")))
    assert not np.array_equal(np.array(Image.open(out / "proj.png")), np.array(Image.open(out / "proj_pti.png")))
    assert cli_main(["video", "--network", str(out / PTI_FILE), "--projected-w", str(out / "projected_w.npz"), "--w-frames", "2",
                     "--device", "cpu", "--output", str(tmp_path / "v.gif")]) == 0
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.size == (32, 32)
    pytest.importorskip("starlette")
    from stylegan.serve.explorer import Explorer

    explorer = Explorer(torch.device("cpu"))
    try:
        slot = explorer.load(str(out / PTI_FILE))
        png, frame, _ = explorer.render({"network": slot.name, "x": 1, "format": "png"}, "test").result()
        assert png[:4] == b"\x89PNG" and frame.pixels.shape[:2] == (32, 32)
    finally:
        explorer.close()


@pytest.mark.parametrize("network", ["sg3t_32", "stylegan1_adain"])
def test_ctrl_c_during_tuning_then_resume_is_exact(parity_dir, target, tmp_path, monkeypatch, capsys, network):
    """StyleGAN3 (parity) and StyleGAN 2019 (a conditional AdaIN network, tests/fixtures)."""
    if network == "stylegan1_adain":
        sg3, args = FIXTURES / "stylegan1_adain.safetensors", ("--num-steps", 2, "--seed", 5, "--pti-steps", 4, "--class", 1)
    else:
        sg3, args = parity_dir / network, ("--num-steps", 2, "--seed", 5, "--pti-steps", 4)
    assert _project(sg3, target, tmp_path / "full", *args) == 0
    original = project_cli.pivotal_tuning

    def interrupted(*a, callback, **kw):
        def cb(s):
            if s.step == 2:
                signal.raise_signal(signal.SIGINT)
            return callback(s)
        return original(*a, callback=cb, **kw)

    monkeypatch.setattr(project_cli, "pivotal_tuning", interrupted)
    part = tmp_path / "part"
    assert _project(sg3, target, part, *args) == 0
    assert "tuning step 2" in capsys.readouterr().out
    state = load_pti(part / PTI_FILE)
    assert state.step == 2 and not state.finished and json.loads((part / "projection.json").read_text())["pti"]["steps"] == 2
    monkeypatch.setattr(project_cli, "pivotal_tuning", original)
    # A different --pti-steps is refused (the unfinished run keeps its own schedule), before anything is written.
    resume = ("--resume", part / "projected_w.npz", *args[6:])  # the --class of the run
    assert _project(sg3, target, part, *resume, "--pti-steps", 7) == 2
    assert "pass --pti-steps 4" in capsys.readouterr().err
    assert _project(sg3, target, part, *resume, "--pti-steps", 4) == 0
    full, resumed = load_network(tmp_path / "full" / PTI_FILE).generator, load_network(part / PTI_FILE).generator
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert load_pti(part / PTI_FILE).finished


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


@pytest.mark.parametrize("flags, message", [
    (["--pti-steps", "0"], "--pti-steps"),
    (["--pti-steps", "x"], "--pti-steps"),
    (["--pti-reg", "-1", "--pti-steps", "2"], "--pti-reg"),
    (["--pti-reg", "1"], "add --pti-steps"),
    (["--pti-reg-input", "rescaled"], "add --pti-steps"),
    (["--pti-steps", "2", "--pti-reg-input", "other"], "--pti-reg-input"),
    (["--w-noise", "nan"], "--w-noise"),
])
def test_bad_flags(parity_dir, target, tmp_path, capsys, flags, message):
    assert _project(parity_dir / "sg2_32", target, tmp_path / "o", *flags) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "o").exists()


def test_network_without_a_generator(parity_dir, target, tmp_path, capsys):
    d_only = tmp_path / "d_only.safetensors"
    Network(D=load_network(parity_dir / "sg2_32").D).save(d_only)
    assert _project(d_only, target, tmp_path / "o", "--pti-steps", 2) == 2
    _one_line_error(capsys, str(d_only), "no generator")
    assert not (tmp_path / "o").exists()


def test_stylegan_xl_pivot_class_and_tuning(parity_xl_dir, target, tmp_path, capsys):
    g16 = parity_xl_dir / "xl_g16_cond"
    assert _project(g16, target, tmp_path / "o", "--pti-steps", 2) == 2
    _one_line_error(capsys, "--class", "DeiT")
    assert not (tmp_path / "o").exists()
    out = tmp_path / "xl"
    assert _project(g16, target, out, "--class", 3, "--num-steps", 2, "--pti-steps", 2) == 0
    info = json.loads((out / "projection.json").read_text())
    assert info["label"] == "class 3" and info["w_noise"] == 0 and info["pti"]["distance"] < info["pti"]["distance_before"]
    tuned = load_network(out / PTI_FILE).generator
    assert isinstance(tuned, stylegan_xl.Generator) and tuned.c_dim == 10
    assert cli_main(["generate", "--network", str(out / PTI_FILE), "--seeds", "0", "--class", "3",
                     "--outdir", str(tmp_path / "gen"), "--device", "cpu"]) == 0
    # The pivot continues only with the class it was projected with; nothing is written for a mismatch.
    assert _project(g16, target, tmp_path / "o2", "--resume", out / "projected_w.npz", "--class", 4, "--pti-steps", 2) == 2
    _one_line_error(capsys, "--class 4", "class 3")
    assert not (tmp_path / "o2").exists()
    # A finished pivot is tuned as it is: a new projection schedule with --pti-steps is refused, nothing written.
    assert _project(g16, target, tmp_path / "o3", "--resume", out / "projected_w.npz", "--class", 3, "--num-steps", 5,
                    "--pti-steps", 2) == 2
    _one_line_error(capsys, "--num-steps 5", "finished projection")
    assert not (tmp_path / "o3").exists()

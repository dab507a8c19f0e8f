"""`stylegan analyze ...` end to end on the sg2_32 parity fixture (a skip generator): PNG + JSON outputs, errors."""

import json

import pytest
import torch
from PIL import Image

from stylegan.cli.main import main
from stylegan.io.checkpoint import save_checkpoint
from stylegan.models import Generator, GeneratorConfig, MappingConfig, SynthesisConfig
from stylegan.models.registry import network_spec


@pytest.fixture
def sg2(parity_dir):
    return str(parity_dir / "sg2_32")


def _outputs(outdir, name):
    with Image.open(outdir / f"{name}.png") as img:
        img.verify()
    return json.loads((outdir / f"{name}.json").read_text())


def _tiny(arch: str, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping=MappingConfig(num_layers=1),
                                     synthesis=SynthesisConfig(channel_base=64, channel_max=16, architecture=arch)))


def test_resolution_usage_network(sg2, tmp_path):
    assert main(["analyze", "resolution-usage", "--network", sg2, "--samples", "16", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    data = _outputs(tmp_path, "resolution-usage")
    assert data["resolutions"] == [4, 8, 16, 32] and sum(data["percent"]) == pytest.approx(100)


def test_resolution_usage_run(tmp_path):
    run = tmp_path / "run"
    for kimg in (0, 4):
        G = _tiny("skip", seed=kimg)
        save_checkpoint(run / f"network-snapshot-{kimg:06d}.safetensors", {"G_ema": (network_spec(G), G.state_dict())})
    assert main(["analyze", "resolution-usage", "--run", str(run), "--samples", "4", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    data = _outputs(tmp_path, "resolution-usage")
    assert data["kimg"] == [0.0, 4.0] and len(data["usage"]) == 2


def test_resolution_usage_refuses_orig(tmp_path, capsys):
    path = tmp_path / "orig.safetensors"
    G = _tiny("orig")
    save_checkpoint(path, {"G_ema": (network_spec(G), G.state_dict())})
    assert main(["analyze", "resolution-usage", "--network", str(path), "--device", "cpu", "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylegan analyze: error: --network") and "skip-architecture" in err and "'orig'" in err
    assert len(err.splitlines()) == 1


def test_ppl_pixel_mse(sg2, tmp_path):
    argv = ["analyze", "ppl", "--network", sg2, "--samples", "6", "--distance", "pixel-mse", "--grid", "2",
            "--device", "cpu", "--outdir", str(tmp_path)]
    assert main(argv) == 0
    data = _outputs(tmp_path, "ppl")
    assert data["distance"] == "pixel-mse" and data["num_samples"] == 6 and len(data["values"]) == 6
    for name in ("ppl-lowest.png", "ppl-highest.png"):
        with Image.open(tmp_path / name) as img:
            assert img.size == (64, 32)


def test_jacobian(sg2, tmp_path, capsys):
    argv = ["analyze", "jacobian", "--network", sg2, "--samples", "1", "--device", "cpu", "--outdir", str(tmp_path)]
    assert main(argv) == 0
    data = _outputs(tmp_path, "jacobian")
    assert data["w"]["shape"] == [3072, 64] and data["w"]["mean"][0] == 1.0
    assert main(argv + ["--space", "both", "--max-elements", "1000000"]) == 2
    assert "3072 x 512 = 1,572,864 elements" in capsys.readouterr().err


def test_droplets(sg2, tmp_path):
    assert main(["analyze", "droplets", "--network", sg2, "--samples", "2", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    data = _outputs(tmp_path, "droplets")
    assert [layer["name"] for layer in data["layers"]][:2] == ["b4.conv1", "b8.conv0"]


def test_spectrum(sg2, tmp_path, capsys):
    images = tmp_path / "imgs"
    assert main(["generate", "--network", sg2, "--seeds", "0-3", "--outdir", str(images), "--device", "cpu"]) == 0
    out = tmp_path / "out"
    argv = ["analyze", "spectrum", "--network", sg2, "--images", str(images), "--num", "4", "--device", "cpu", "--outdir", str(out)]
    assert main(argv) == 0
    data = _outputs(out, "spectrum")
    assert [s["label"] for s in data["sources"]] == ["images", "generated"] and data["std_source"] == "images"
    assert (out / "spectrum-generated.npz").is_file()
    capsys.readouterr()
    assert main(["analyze", "spectrum", "--device", "cpu", "--outdir", str(out)]) == 2
    assert "at least one image source" in capsys.readouterr().err
    assert main(argv[:-2] + ["--num", "9", "--outdir", str(out)]) == 2
    assert "fewer than the 9 requested" in capsys.readouterr().err

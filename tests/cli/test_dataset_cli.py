"""`stylegan dataset` as a real process: offline built-in data, exit codes, one-line errors, killed runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan.data import ImageDataset

# Runs the CLI with an audit hook that refuses every network connection and name lookup.
OFFLINE = (
    "import sys\n"
    "def refuse(event, args):\n"
    "    if event.startswith(('socket.connect', 'socket.getaddrinfo', 'socket.gethostby')):\n"
    "        raise OSError(f'network access attempted: {event}')\n"
    "sys.addaudithook(refuse)\n"
    "from stylegan.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def stylegan(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", OFFLINE, *args], capture_output=True, text=True, timeout=120, **kw)


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tmp-" in p.name)


def test_builtin_fashion_mnist_offline(tmp_path):
    dest = tmp_path / "fm.zip"
    r = stylegan("dataset", "--source", "builtin:fashion-mnist", "--dest", str(dest))
    assert r.returncode == 0, r.stderr
    train = "training split" in r.stdout
    assert train == Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file()
    count = 60000 if train else 10000
    assert f"wrote {count:,} images (32x32 grayscale, 10 classes) to {dest}" in r.stdout
    ds = ImageDataset(dest)
    assert len(ds) == count and ds.image_shape == (1, 32, 32) and ds.label_dim == 10
    assert ds.class_names[0] == "T-shirt/top" and temporaries(tmp_path) == []


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (8, 8, 3)).astype(np.uint8)).save(src / f"{i}.png")
    data = (src / "1.png").read_bytes()
    (src / "1.png").write_bytes(data[: len(data) // 2])
    r = stylegan("dataset", "--source", str(src), "--dest", str(tmp_path / "out.zip"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"stylegan dataset: error: {src / '1.png'}: truncated or corrupt image (")
    assert not (tmp_path / "out.zip").exists() and temporaries(tmp_path) == []

    r = stylegan("dataset", "--source", str(src), "--dest", str(tmp_path / "out.zip"), "--skip-bad")
    assert r.returncode == 0 and r.stderr == ""
    assert "wrote 2 images (8x8 RGB, no labels)" in r.stdout and f"skipped 1:\n  {src / '1.png'}: truncated" in r.stdout
    assert len(zipfile.ZipFile(tmp_path / "out.zip").namelist()) == 3

    r = stylegan("dataset", "--source", str(src), "--dest", str(tmp_path / "x.zip"), "--resolution", "100x100")
    assert r.returncode == 2 and "must be a power of two >= 4, e.g. 64x64 or 128x128" in r.stderr
    r = stylegan("dataset", "--source", str(src), "--dest", str(tmp_path / "x.zip"), "--resolution", "big")
    assert r.returncode == 2 and "bad resolution 'big': expected WxH" in r.stderr


def _start_and_wait_for_writing(tmp_path: Path, dest: Path) -> tuple[subprocess.Popen, Path]:
    # 10,000 images upscaled to 256x256 take several seconds: long enough to interrupt.
    p = subprocess.Popen([sys.executable, "-m", "stylegan", "dataset", "--source", "builtin:fashion-mnist-test",
                          "--dest", str(dest), "--resolution", "256x256"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tmp = temporaries(tmp_path)
        if tmp and tmp[0].stat().st_size > 300_000:  # a few images are in
            return p, tmp[0]
        assert p.poll() is None, p.communicate()
        time.sleep(0.02)
    p.kill()
    pytest.fail("the conversion did not start writing within 60 s")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_leaves_nothing(tmp_path, sig, code):
    dest = tmp_path / "fm.zip"
    p, tmp = _start_and_wait_for_writing(tmp_path, dest)
    assert tmp.name.startswith(".fm.zip.tmp-")
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == code and err.endswith(f"stylegan dataset: interrupted; {dest} was left untouched\n")
    assert list(tmp_path.iterdir()) == []


def test_killed_run_leaves_no_dest_and_the_next_run_cleans_up(tmp_path):
    dest = tmp_path / "fm.zip"
    p, tmp = _start_and_wait_for_writing(tmp_path, dest)
    p.kill()
    p.wait(timeout=30)
    assert not dest.exists() and temporaries(tmp_path) == [tmp]  # SIGKILL cannot be caught: a hidden temporary stays
    r = stylegan("dataset", "--source", "builtin:fashion-mnist-test", "--dest", str(dest), "--max-images", "16")
    assert r.returncode == 0 and f"removed {tmp}, left by an interrupted run" in r.stdout
    assert temporaries(tmp_path) == [] and len(ImageDataset(dest)) == 16


def test_help_names_the_official_flags():
    r = subprocess.run([sys.executable, "-m", "stylegan", "dataset", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("--source", "--dest", "--resolution", "--transform", "--resize-filter", "--max-images", "--labels",
                 "--channels", "--skip-bad", "builtin:fashion-mnist"):
        assert flag in r.stdout

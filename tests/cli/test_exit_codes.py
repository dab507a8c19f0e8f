"""What the `stylegan` process says and returns when things go wrong around it: a full disk, a reader of stdout
that goes away, Ctrl-C (docs/cli.md lists the exit codes)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from stylegan.cli.main import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, main
from stylegan.io import checkpoint


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    assert main(["init", "--out", str(path)]) == 0
    return path


def test_a_full_disk_names_the_image_and_leaves_the_others_whole(net, tmp_path, monkeypatch, capsys):
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 5:  # seed0000.png and its folder, seed0000.npy and its folder, then seed0001.png
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fdatasync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    out = tmp_path / "out"
    assert main(["generate", "--network", str(net), "--seeds", "0-3", "--raw", "--outdir", str(out)]) == 2
    assert capsys.readouterr().err == f"stylegan generate: error: {out / 'seed0001.png'}: No space left on device\n"
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.npy", "seed0000.png"]  # written as made, each whole


def _start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stylegan", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("command", ["info", "generate"])
def test_a_reader_that_goes_away_ends_the_command_quietly(command, net, tmp_path):
    argv = ["info", str(net)] if command == "info" else ["generate", "--network", str(net), "--seeds", "0-1", "--outdir", str(tmp_path)]
    proc = _start(*argv)
    proc.stdout.close()  # `stylegan ... | head -0`: the pipe is closed before the command writes
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert proc.stderr.read() == ""
    if command == "generate":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0000.png", "seed0001.png"]


def test_ctrl_c_is_one_line_and_exit_130(net, tmp_path):
    proc = _start("generate", "--network", str(net), "--seeds", "0-99999", "--outdir", str(tmp_path))
    deadline = time.time() + 120
    while not (tmp_path / "seed0000.png").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == EXIT_INTERRUPTED
    assert proc.stderr.read().splitlines()[-1] == "stylegan generate: interrupted"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind

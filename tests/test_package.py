"""Import hygiene: no compilation, no warnings, no foreign modules."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_silent_and_self_contained():
    code = (
        "import sys, stylegan, stylegan.cli.main;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch_utils', 'dnnlib', 'torchvision', 'timm')];"
        "assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "stylegan", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for command in ("init", "generate", "info", "convert", "dataset", "metrics"):
        assert command in r.stdout


def test_help_and_version_start_without_torch():
    """`stylegan --help` and `--version` import only the command table (no torch, numpy or scipy)."""
    code = (
        "import sys\n"
        "from stylegan.cli.main import main\n"
        "for argv in (['--help'], ['--version'], ['--help', 'train']):\n"
        "    assert main(argv) == 0\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'scipy', 'PIL') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "stylegan 0.1.0" in r.stdout and "COMMAND" in r.stdout


def test_a_command_imports_only_what_it_needs():
    code = ("import sys\nfrom stylegan.cli.main import build_parser\nbuild_parser(['generate', 'info'])\n"
            "print(sorted(m for m in ('scipy', 'matplotlib', 'stylegan.metrics', 'stylegan.training.loop', 'stylegan.data.tool') "
            "if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "[]\n", r.stdout + r.stderr

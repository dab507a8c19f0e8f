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

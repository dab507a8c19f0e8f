"""Fixtures of the fault-injection tests (helpers in faultkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import uninterrupted_run


@pytest.fixture(scope="session")
def reference(data64, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """An uninterrupted run of 0.256 kimg (16 snapshots), and the digests of every snapshot it wrote."""
    return uninterrupted_run(data64, tmp_path_factory.mktemp("reference"), "0.256")

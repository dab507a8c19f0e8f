import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

PARITY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "parity"


@pytest.fixture
def parity_dir() -> Path:
    if not PARITY_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR}")
    return PARITY_DIR

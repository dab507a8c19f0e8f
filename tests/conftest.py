import os
import sys
from pathlib import Path

# Triton kernels run on CPU tensors in Triton's interpreter; Triton reads the variable when kernels are defined,
# which happens when `stylegan.ops.backend` first imports them (never before this file runs).
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

PARITY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "parity"


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR}")
    return PARITY_DIR


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Tests use tiny tensors: intra-op threads only add contention on a 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

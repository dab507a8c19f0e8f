import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from helpers import PARITY_DIR, PARITY_XL_DIR, shared_missing  # noqa: E402

from stylegan.data.tool import ConvertConfig, convert_dataset  # noqa: E402


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY_DIR.is_dir():
        shared_missing(f"parity fixtures at {PARITY_DIR}")
    return PARITY_DIR


@pytest.fixture(scope="session")
def parity_xl_dir() -> Path:
    if not PARITY_XL_DIR.is_dir():
        shared_missing(f"StyleGAN-XL parity fixtures at {PARITY_XL_DIR}")
    return PARITY_XL_DIR


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Tests use tiny tensors: intra-op threads only add contention on a 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def data64(tmp_path_factory) -> Path:
    """64 labelled 32x32 grayscale images from the bundled Fashion-MNIST test split."""
    dest = tmp_path_factory.mktemp("data") / "fm64.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=64), log=lambda s: None)
    return dest

from __future__ import annotations

from pathlib import Path

import pytest

from stylegan.data import ConvertConfig, ConvertReport, convert_dataset


@pytest.fixture(scope="session")
def fashion_test_zip(tmp_path_factory) -> tuple[Path, ConvertReport]:
    """The bundled Fashion-MNIST test split converted once (about a second)."""
    dest = tmp_path_factory.mktemp("fashion") / "fm.zip"
    report = convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest), log=lambda _: None)
    return dest, report

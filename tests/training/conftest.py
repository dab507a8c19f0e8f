"""Fixtures of the training tests: a tiny labelled dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from stylegan.data.tool import ConvertConfig, convert_dataset


@pytest.fixture(scope="session")
def data64(tmp_path_factory) -> Path:
    """64 labelled 32x32 grayscale images from the bundled Fashion-MNIST test split."""
    dest = tmp_path_factory.mktemp("data") / "fm64.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=64), log=lambda s: None)
    return dest

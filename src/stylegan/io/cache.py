"""The user cache directory (converted built-in datasets, detector weights, metric statistics)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$STYLEGAN_CACHE, else $XDG_CACHE_HOME/stylegan, else ~/.cache/stylegan."""
    if os.environ.get("STYLEGAN_CACHE"):
        return Path(os.environ["STYLEGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stylegan"

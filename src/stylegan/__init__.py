"""stylegan: the StyleGAN family in pure, tested PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .io.load import Network, load_network

__version__ = "0.1.0"
__all__ = ["Network", "load_network", "__version__"]


def __getattr__(name: str) -> Any:
    """`Network` and `load_network` are imported on first use, so that `import stylegan` (and `stylegan --help`)
    does not load torch."""
    if name in ("Network", "load_network"):
        from .io import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

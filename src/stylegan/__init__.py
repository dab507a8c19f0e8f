"""stylegan: the StyleGAN family in pure, tested PyTorch."""

from .io.load import Network, load_network

__version__ = "0.1.0"
__all__ = ["Network", "load_network", "__version__"]

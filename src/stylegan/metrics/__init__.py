"""Quality metrics for trained generators."""

from .equivariance import compute_equivariance_metrics

__all__ = ["compute_equivariance_metrics"]

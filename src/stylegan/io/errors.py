"""The error every checkpoint reader raises for a file it cannot read."""

from __future__ import annotations


class NetworkLoadError(ValueError):
    """A checkpoint could not be read; the message names the file and the problem."""

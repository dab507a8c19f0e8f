"""One wording for "these tensors do not fit", shared by the checkpoint readers."""

from __future__ import annotations


def few(items: list[str], n: int = 6) -> str:
    """The first `n` items, comma-separated, with a count of the rest."""
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def describe_mismatch(groups: list[tuple[str, list[str]]], n: int = 6) -> str:
    """'missing a, b; unexpected c' for the non-empty (label, items) groups; '' when every group is empty."""
    return "; ".join(f"{label} {few(items, n)}" for label, items in groups if items)

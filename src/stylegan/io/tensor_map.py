"""One table-driven mapper between our state dicts and the tensors of foreign checkpoints (NVlabs' TensorFlow
pickles, rosinality/stylegan2-pytorch files).

A table is a list of rows (our name regex, their name template or None, transform). The first row whose regex
fully matches one of our tensor names gives the foreign name, the template filled with the match's groups and
the fields a format derives from them, and how values convert between the two layouts. A template of None marks
a tensor that only we store (derived from the config, such as FIR filters); it is taken from our freshly built
network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .mismatch import describe_mismatch, few


@dataclass(frozen=True)
class Transform:
    """How one tensor is stored on each side: `to_ours` / `to_theirs` convert values (torch tensors)."""

    name: str
    to_ours: Callable[[torch.Tensor], torch.Tensor]
    to_theirs: Callable[[torch.Tensor], torch.Tensor]
    is_kernel: bool = False  # a derived FIR buffer: checked against the config, never taken over


SAME = Transform("same", lambda t: t, lambda t: t)

Row = tuple[str, "str | None", "Transform | None"]
Fields = Callable[[dict[str, str]], dict[str, Any]]


def lookup(table: Sequence[Row], key: str, fields: Fields) -> tuple[str | None, Transform | None] | None:
    """(their name, transform) of our tensor `key`, the name's template filled by `fields`; None if no row matches."""
    for pattern, template, transform in table:
        m = re.fullmatch(pattern, key)
        if m:
            return (None if template is None else template.format(**fields(m.groupdict()))), transform
    return None


def _as_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (np.ndarray, np.generic)):
        return torch.tensor(np.array(value, order="C"))  # a copy: pickled arrays may be read-only
    return None


def to_ours(template: Mapping[str, torch.Tensor], theirs: Mapping[str, Any], table: Sequence[Row], fields: Fields, *,
            source: str, where: str, aliases: Mapping[str, str] | None = None, ignored: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Our state dict shaped like `template` (a freshly built network's), values from `theirs` (tensors or numpy
    arrays) through `table`. `aliases` maps a table name to the name `theirs` holds it under; their tensors that no
    row uses are an error unless a regex of `ignored` matches them. Missing, unknown and misshapen tensors raise one
    ValueError naming them all; `source` names their tensors in messages ("TensorFlow variable")."""
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    wrong: list[str] = []
    for key, ref in template.items():
        found = lookup(table, key, fields)
        if found is None:
            raise ValueError(f"{where}: our tensor {key} has no {source} counterpart (architecture not expressible)")
        name, transform = found
        if name is None or transform is None:
            out[key] = ref.detach().clone()
            continue
        held = name if name in theirs else (aliases or {}).get(name, name)
        value = _as_tensor(theirs.get(held))
        if value is None:
            missing.append(f"{name} (for {key})")
            continue
        used.add(held)
        expected = transform.to_theirs(ref.detach())
        if value.shape != expected.shape:
            wrong.append(f"{held} {list(value.shape)} (expected {list(expected.shape)} for {key})")
            continue
        if transform.is_kernel:
            if not torch.allclose(value.to(expected.dtype), expected, atol=1e-6):
                raise ValueError(f"{where}: blur kernel {held} does not match the network's FIR filter")
            out[key] = ref.detach().clone()
        else:
            out[key] = transform.to_ours(value).to(ref.dtype).contiguous().clone()
    unknown = sorted(str(n) for n in set(theirs) - used if not any(re.fullmatch(p, str(n)) for p in ignored))
    problems = describe_mismatch([("missing", missing), ("unknown", unknown), ("wrong shape", wrong)])
    if problems:
        raise ValueError(f"{where}: {source}s do not fit the architecture: {problems}")
    return out


def to_theirs(ours: Mapping[str, torch.Tensor], template: Mapping[str, torch.Tensor], table: Sequence[Row], fields: Fields, *,
              source: str, where: str) -> dict[str, torch.Tensor]:
    """The inverse of `to_ours`: our state dict `ours`, checked against `template`, under their names and layouts."""
    missing = sorted(set(template) - set(ours))
    unexpected = sorted(set(ours) - set(template))
    wrong = sorted(k for k in set(ours) & set(template) if ours[k].shape != template[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(f"{where}: state dict does not fit its config: missing {few(missing) or 'none'}; "
                         f"unexpected {few(unexpected) or 'none'}; wrong shape {few(wrong) or 'none'}")
    out: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        found = lookup(table, key, fields)
        if found is None:
            raise ValueError(f"{where}: our tensor {key} has no {source} counterpart (architecture not expressible)")
        name, transform = found
        if name is not None and transform is not None:
            out[name] = transform.to_theirs(value.detach().to("cpu")).contiguous().clone()
    return out

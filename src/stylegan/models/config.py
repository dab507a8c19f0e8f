"""Typed, JSON-serialisable network configurations."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclasses; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {}
    for key, value in data.items():
        sub = _dataclass_in(hints[key])
        item = _dataclass_in(typing.get_args(hints[key])[0]) if typing.get_origin(hints[key]) is list else None
        if sub is not None and isinstance(value, dict):
            value = config_from_dict(sub, value, f"{where}.{key}")
        elif item is not None and isinstance(value, list):
            value = [config_from_dict(item, v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        kwargs[key] = value
    return cls(**kwargs)


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


class JsonConfig:
    """Base of the dataclass configs: JSON round trip; `describe` names the config in errors."""

    describe: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return config_from_dict(cls, data, cls.describe)

"""Typed, JSON-serialisable configurations.

Configs are dataclasses deriving from `JsonConfig`: `to_dict` / `from_dict` round-trip them through plain JSON
data (nested configs included, unknown keys refused), `Literal`-typed fields accept only their listed values
(checked whenever they are set, so on construction too), and `upgrade` reads a config's older JSON layouts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound="JsonConfig")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain JSON-ready dict (tuples stay tuples; json writes them as lists)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclasses and lists of them (a `JsonConfig` reads
    itself, older layouts included) and turning lists back into tuples where the field is a tuple; unknown keys are
    an error."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    if isinstance(cls, type) and issubclass(cls, JsonConfig):
        data = cls.upgrade(data)
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {}
    for key, value in data.items():
        sub = _dataclass_in(hints[key])
        item = _dataclass_in(typing.get_args(hints[key])[0]) if typing.get_origin(hints[key]) is list else None
        if sub is not None and isinstance(value, dict):
            value = _read(sub, value, f"{where}.{key}")
        elif item is not None and isinstance(value, list):
            value = [_read(item, v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        elif typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _read(cls: type, data: dict[str, Any], where: str) -> Any:
    """A nested config: a `JsonConfig` reads itself (older layouts included), another dataclass field by field."""
    return cls.from_dict(data, where) if issubclass(cls, JsonConfig) else config_from_dict(cls, data, where)


_HINTS: dict[type, dict[str, Any]] = {}
_CHOICES: dict[type, dict[str, tuple[Any, ...]]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _union_args(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _dataclass_in(hint: Any) -> type | None:
    for arg in _union_args(hint):
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


def _choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """Field -> the values a `Literal`-typed field accepts (True and False too where the hint also allows bool)."""
    if cls not in _CHOICES:
        out = {}
        for name, hint in _hints(cls).items():
            args = _union_args(hint)
            literals = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
            if literals:
                out[name] = (*literals, *((True, False) if bool in args else ()), *((None,) if type(None) in args else ()))
        _CHOICES[cls] = out
    return _CHOICES[cls]


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """ValueError unless `value` is one of `choices` (True is not 1 here: a bool is only a bool)."""
    if not any(value is c if isinstance(c, bool) or c is None else (value == c and not isinstance(value, bool)) for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class JsonConfig:
    """Base of the dataclass configs: JSON round trip, `Literal` fields checked, older layouts upgraded.
    `describe` names the config in error messages."""

    describe: ClassVar[str] = "config"

    def __setattr__(self, name: str, value: Any) -> None:
        choices = _choices(type(self)).get(name)
        if choices is not None:
            check_choice(name, value, choices)
        super().__setattr__(name, value)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], where: str | None = None) -> C:
        return config_from_dict(cls, data, where or cls.describe)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """`data` in an older JSON layout of this config -> the current layout (as it is where nothing changed)."""
        return data

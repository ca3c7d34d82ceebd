"""Turning a config mapping into a @dataclass, with one-line errors naming the key and what is allowed."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from structae.errors import UserError

T = TypeVar("T")


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, list | tuple)
    if origin is dict:
        return isinstance(value, Mapping)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def from_mapping(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """Build `cls` from `values`; an unknown key or a wrong type is a UserError naming `where.key`."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = dict(values or {})
    for key, value in values.items():
        if key not in fields:
            raise UserError(f"{where}.{key}: unknown key; allowed here: {', '.join(sorted(fields))}")
        if not _accepts(hints[key], value):
            raise UserError(f"{where}.{key}: {value!r} is not of type {hints[key]}")
        if isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            values[key] = tuple(value)
    try:
        return cls(**values)
    except ValueError as err:  # raised by __post_init__ range checks
        raise UserError(f"{where}: {err}") from None

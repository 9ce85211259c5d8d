"""NamedTuples made in bulk, for per-post records on the hot path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat
from typing import Any, TypeVar

T = TypeVar("T", bound=tuple[Any, ...])


def named_tuples(cls: type[T], *columns: Iterable[Any]) -> Iterator[T]:
    """`map(cls, *columns)` for a NamedTuple class, without its Python `__new__` per tuple."""
    return map(tuple.__new__, repeat(cls), zip(*columns, strict=True))

"""Serialization contexts, applied only to converters that use them."""

from __future__ import annotations

import contextlib
import weakref
from typing import TypeVar, cast

import temporalio.converter

__all__ = ["ignores_context", "with_context"]

_C = TypeVar("_C")

# Converters that returned themselves for a context, by id. Applying a context runs
# runtime-protocol checks over every component, which costs more than converting a
# small value; the default converters never change, so they are checked once.
_ignores_context: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()


def with_context(converter: _C, context: temporalio.converter.SerializationContext) -> _C:
    """``converter`` with ``context`` applied, or ``converter`` itself if it ignores contexts."""
    if _ignores_context.get(id(converter)) is converter:
        return converter
    if isinstance(converter, temporalio.converter.WithSerializationContext):
        applied = cast(_C, converter.with_context(context))
        if applied is not converter:
            return applied
    # A converter that cannot be weakly referenced is checked every time.
    with contextlib.suppress(TypeError):
        _ignores_context[id(converter)] = converter
    return converter


def ignores_context(converter: object) -> bool:
    """Whether ``converter`` is known to ignore contexts (from an earlier :func:`with_context`).

    Then a caller need not build the context at all.
    """
    return _ignores_context.get(id(converter)) is converter

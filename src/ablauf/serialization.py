"""Serialization contexts, applied only to converters that use them."""

from __future__ import annotations

from typing import TypeVar, cast

import temporalio.converter

__all__ = ["ignores_context", "with_context"]

_C = TypeVar("_C")

# Converters that returned themselves for a context, by id. Applying a context runs
# runtime-protocol checks over every component, which costs more than converting a
# small value; the default converters never change, so they are checked once. Held
# strongly (an id stays theirs) in a plain dict, as it is read for every activity;
# the few converters a process has fit well below the bound.
_ignores_context: dict[int, object] = {}
_KEPT = 256


def with_context(converter: _C, context: temporalio.converter.SerializationContext) -> _C:
    """``converter`` with ``context`` applied, or ``converter`` itself if it ignores contexts."""
    if _ignores_context.get(id(converter)) is converter:
        return converter
    if isinstance(converter, temporalio.converter.WithSerializationContext):
        applied = cast(_C, converter.with_context(context))
        if applied is not converter:
            return applied
    if len(_ignores_context) >= _KEPT:
        _ignores_context.clear()
    _ignores_context[id(converter)] = converter
    return converter


def ignores_context(converter: object) -> bool:
    """Whether ``converter`` is known to ignore contexts (from an earlier :func:`with_context`).

    Then a caller need not build the context at all.
    """
    return _ignores_context.get(id(converter)) is converter

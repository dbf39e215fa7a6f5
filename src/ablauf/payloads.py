"""Payload conversion through a payload converter, with a shortcut for plain values.

Most arguments and results are ``None``, bools, ints, finite floats or
strings. Under the SDK's default payload converter, left as it ships, those
always become the payloads built here, for a fraction of the converter's
cost. Every other value, and every value under any other converter, goes
through the converter itself. A test holds the two to the same payloads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import temporalio.converter as tc
from temporalio.api.common.v1 import Payload

from ablauf.wire import field, varint

__all__ = ["from_payloads", "payloads_field", "to_payloads"]

_JSON = b"json/plain"
_NULL = b"binary/null"
# A payload is its metadata entry, then field 2 (data) as tag, length, bytes.
_JSON_HEAD = Payload(metadata={"encoding": _JSON}).SerializeToString() + b"\x12"
_NULL_PAYLOAD = Payload(metadata={"encoding": _NULL}).SerializeToString()
_JSON_INT = re.compile(rb"-?(?:0|[1-9][0-9]{0,17})")
_SHIPPED = (
    tc.BinaryNullPayloadConverter,
    tc.BinaryPlainPayloadConverter,
    tc.JSONProtoPayloadConverter,
    tc.BinaryProtoPayloadConverter,
    tc.JSONPlainPayloadConverter,
)
_MISS = object()

# Verdicts by converter id; each converter is held so its id stays its own.
_plain: dict[int, tuple[object, bool]] = {}
_KEPT = 256


def _shipped(converter: object) -> bool:
    if type(converter) is tc._payload_converter._TemporalTransferTypePayloadConverter:
        # Builtin types can carry no transfer type converter: the wrapper passes them through.
        converter = converter._inner_payload_converter
    if type(converter) is not tc.DefaultPayloadConverter:
        return False
    parts = list(converter.converters.items())
    if [type(c) for _, c in parts] != list(_SHIPPED):
        return False
    if [key for key, _ in parts] != [c().encoding.encode() for c in _SHIPPED]:
        return False
    json_plain = parts[-1][1]
    assert isinstance(json_plain, tc.JSONPlainPayloadConverter)
    return (
        json_plain._encoder is tc.AdvancedJSONEncoder
        and json_plain._decoder is None
        and not json_plain._custom_type_converters
    )


def _is_plain(converter: object) -> bool:
    seen = _plain.get(id(converter))
    if seen is not None and seen[0] is converter:
        return seen[1]
    if len(_plain) >= _KEPT:
        _plain.clear()
    verdict = _shipped(converter)
    _plain[id(converter)] = (converter, verdict)
    return verdict


def _encode_data(value: Any) -> bytes | None:
    """The serialized payload of a plain value, or None for any other value."""
    kind = type(value)
    if kind is int:
        text = int.__repr__(value)
    elif kind is str:
        text = json.encoder.encode_basestring_ascii(value)
    elif value is None:
        return _NULL_PAYLOAD
    elif kind is bool:
        text = "true" if value else "false"
    elif kind is float and math.isfinite(value):
        text = float.__repr__(value)
    else:
        return None
    data = text.encode()
    return _JSON_HEAD + varint(len(data)) + data


def _encode(value: Any) -> Payload | None:
    data = _encode_data(value)
    return None if data is None else Payload.FromString(data)


def to_payloads(converter: tc.PayloadConverter, values: Sequence[Any]) -> list[Payload]:
    """``converter.to_payloads(values)``."""
    if _is_plain(converter):
        payloads = []
        for value in values:
            payload = _encode(value)
            if payload is None:
                break
            payloads.append(payload)
        else:
            return payloads
    return converter.to_payloads(values)


def payloads_field(
    converter: tc.PayloadConverter, values: Sequence[Any], number: int
) -> bytes | None:
    """A message's field ``number`` set to ``Payloads(payloads=converter.to_payloads(values))``,
    serialized for merging (the cheaper copy), when the values are plain and the
    converter is the shipped one; None when the converter must be asked."""
    if not _is_plain(converter):
        return None
    parts = []
    for value in values:
        data = _encode_data(value)
        if data is None:
            return None
        # Payloads.payloads is field 1.
        parts.append(field(1, data))
    return field(number, b"".join(parts))


def _decode(payload: Payload, hint: object) -> Any:
    try:
        return _decode_plain(payload, hint)
    except ValueError:
        # Not JSON after all: the converter raises its own error for it.
        return _MISS


def _decode_plain(payload: Payload, hint: object) -> Any:
    encoding = payload.metadata.get("encoding")
    if encoding == _JSON:
        data = payload.data
        if hint is int and (
            # Non-negative without a leading zero (a quicker test than the pattern).
            (data.isdigit() and len(data) < 19 and (data[0] != 0x30 or len(data) == 1))
            or _JSON_INT.fullmatch(data)
        ):
            return int(data)
        if hint is None:
            return json.loads(data)
        if hint is str or hint is bool or hint is int or hint is float:
            value = json.loads(data)
            kind = type(value)
            if kind is hint:
                return value
            if (hint is int or hint is float) and (kind is int or kind is float):
                return hint(value)
        return _MISS
    if encoding == _NULL and not payload.data:
        return None
    return _MISS


def from_payloads(
    converter: tc.PayloadConverter,
    payloads: Sequence[Payload],
    type_hints: list[type] | None = None,
) -> list[Any]:
    """``converter.from_payloads(payloads, type_hints)``."""
    if _is_plain(converter):
        hints = type_hints or ()
        values = []
        for i, payload in enumerate(payloads):
            value = _decode(payload, hints[i] if i < len(hints) else None)
            if value is _MISS:
                break
            values.append(value)
        else:
            return values
    return converter.from_payloads(payloads, type_hints)

"""Pieces of protobuf's wire format, for building serialized messages to merge
or parse: one parse of concatenated bytes is cheaper than copying sub-messages
in (though not than setting a few scalar fields)."""

from __future__ import annotations

__all__ = ["field", "varint"]

_SMALL = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """A non-negative integer as a base-128 varint."""
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, data: bytes) -> bytes:
    """A length-delimited field (a message, bytes or string) holding ``data``."""
    return varint(number << 3 | 2) + varint(len(data)) + data

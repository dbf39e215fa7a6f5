"""The shortcut for plain values gives exactly what the SDK's converter gives."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
import temporalio.converter as tc
from temporalio.api.command.v1 import ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from ablauf.payloads import from_payloads, payloads_field, to_payloads

DEFAULT = tc.DataConverter.default.payload_converter

PLAIN: list[Any] = [
    None,
    True,
    False,
    0,
    -0,
    7,
    -12,
    2**62,
    2**70,
    -(10**30),
    0.0,
    -0.0,
    1.5,
    1e300,
    5e-324,
    "",
    "order-1",
    'quote " and backslash \\',
    "tab\tnewline\n",
    "grüße ☃ 😀",
    "x" * 127,
    "y" * 500,
]


@dataclasses.dataclass
class Order:
    id: str
    amount: float


OTHER: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    b"bytes",
    [1, 2],
    {"b": 1, "a": 2},
    Order("o", 2.5),
    RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"1")),
]


@pytest.mark.parametrize("value", [*PLAIN, *OTHER], ids=repr)
def test_a_value_becomes_the_payload_the_sdk_makes(value: Any) -> None:
    ours = to_payloads(DEFAULT, [value])
    assert [p.SerializeToString() for p in ours] == [
        p.SerializeToString() for p in DEFAULT.to_payloads([value])
    ]


def test_mixed_values_keep_their_order() -> None:
    values = [1, Order("o", 1.0), "s", None]
    assert to_payloads(DEFAULT, values) == DEFAULT.to_payloads(values)


HINTS: list[Any] = [None, int, float, str, bool, Any, type(None), bytes]


@pytest.mark.parametrize("value", [*PLAIN, [1, 2], {"a": 1}], ids=repr)
@pytest.mark.parametrize("hint", HINTS, ids=repr)
def test_a_payload_becomes_the_value_the_sdk_reads(value: Any, hint: Any) -> None:
    payloads = DEFAULT.to_payloads([value])
    try:
        expected = DEFAULT.from_payloads(payloads, [hint])
    except Exception as err:
        with pytest.raises(type(err)) as raised:
            from_payloads(DEFAULT, payloads, [hint])
        assert str(raised.value) == str(err)
        return
    got = from_payloads(DEFAULT, payloads, [hint])
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize(
    "data",
    [b"5", b"-0", b"05", b"+5", b"5.0", b"1e3", b" 5", b"12345678901234567890123", b"[]", b"x"],
)
def test_json_read_by_an_other_sdk_decodes_alike(data: bytes) -> None:
    payloads = [Payload(metadata={"encoding": b"json/plain"}, data=data)]
    for hint in (int, None, float):
        try:
            expected = DEFAULT.from_payloads(payloads, [hint])
        except Exception as err:
            with pytest.raises(type(err)):
                from_payloads(DEFAULT, payloads, [hint])
            continue
        got = from_payloads(DEFAULT, payloads, [hint])
        assert got == expected
        assert [type(v) for v in got] == [type(v) for v in expected]


def test_fewer_hints_than_payloads_read_the_rest_unhinted() -> None:
    payloads = DEFAULT.to_payloads([1, "a", [3]])
    assert from_payloads(DEFAULT, payloads, [float]) == [1.0, "a", [3]]


class Shouting(tc.JSONPlainPayloadConverter):
    def to_payload(self, value: Any) -> Payload | None:
        return Payload(
            metadata={"encoding": b"json/plain"}, data=json.dumps(value).upper().encode()
        )


class ShoutingConverter(tc.CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(tc.BinaryNullPayloadConverter(), Shouting())


def test_an_own_converter_is_always_asked() -> None:
    converter = tc.DataConverter(payload_converter_class=ShoutingConverter).payload_converter
    assert to_payloads(converter, ["quiet"])[0].data == b'"QUIET"'


class Tagged(tc.JSONTypeConverter):
    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is int:
            return value + 1000
        return tc.JSONTypeConverter.Unhandled


def test_changed_default_converters_are_always_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tc.DefaultPayloadConverter.default_encoding_payload_converters
    monkeypatch.setattr(
        tc.DefaultPayloadConverter,
        "default_encoding_payload_converters",
        (*shipped[:-1], tc.JSONPlainPayloadConverter(custom_type_converters=[Tagged()])),
    )
    converter = tc.DataConverter().payload_converter
    payloads = to_payloads(converter, [1])
    assert from_payloads(converter, payloads, [int]) == [1001]


@pytest.mark.parametrize("values", [[v] for v in PLAIN] + [PLAIN, [1, Order("o", 1.0)]], ids=repr)
def test_a_payloads_field_holds_what_the_sdk_makes(values: list[Any]) -> None:
    field = payloads_field(DEFAULT, values, 6)
    if any(not isinstance(v, str | int | float | type(None)) for v in values):
        assert field is None
        return
    assert field is not None
    message = ScheduleActivityTaskCommandAttributes()
    message.MergeFromString(field)
    assert list(message.input.payloads) == DEFAULT.to_payloads(values)

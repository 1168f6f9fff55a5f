"""The CBOR data converter: round trips by type hint, and clear refusals."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.sdk import converter
from shoal.sdk.converter import DataConverter

CONV = converter.default()


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color
    center: Optional[Point] = None
    tags: dict[str, Point] = dataclasses.field(default_factory=dict)
    when: Optional[datetime] = None
    level: Level = Level.LOW
    span: tuple[int, int] = (0, 0)


def roundtrip(value: Any, hint: Any = None) -> Any:
    return CONV.from_payloads(CONV.to_payloads([value]), [hint])[0]


def test_default_is_a_shared_data_converter():
    assert converter.default() is DataConverter.default
    assert isinstance(converter.default(), DataConverter)


def test_nested_dataclasses_round_trip_with_hints():
    shape = Shape(name="tri", points=[Point(1, 2.5), Point(3)], color=Color.BLUE,
                  center=Point(0, 0.5), tags={"a": Point(9)},
                  when=datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc), level=Level.HIGH,
                  span=(3, 4))
    assert roundtrip(shape, Shape) == shape
    assert roundtrip([shape, None], list[Optional[Shape]]) == [shape, None]
    assert roundtrip({"s": shape}, dict[str, Shape]) == {"s": shape}


def test_without_hints_values_decode_as_plain_data():
    assert roundtrip(Point(1, 2.0)) == {"x": 1, "y": 2.0}
    assert roundtrip(Color.RED) == "red"
    assert roundtrip((1, "a")) == [1, "a"]


@pytest.mark.parametrize("value,hint", [
    (None, None), (True, bool), (b"\x00\xff", bytes), ("é", str), (3, int), (2.5, float),
    (datetime(2024, 1, 2, 3, 4, 5), datetime),  # naive: travels as ISO text
    (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), datetime),
    (date(2024, 1, 2), date), (timedelta(seconds=90.5), timedelta),
    (uuid.UUID(int=5), uuid.UUID), ({1, 2}, set[int]), (Level.HIGH, Level),
    (Color.RED, Color), (7, Union[int, str]), ("x", Union[int, str]),
])
def test_plain_and_time_values_round_trip(value, hint):
    assert roundtrip(value, hint) == value


def test_int_result_decodes_as_float_when_hinted():
    assert roundtrip(3, float) == 3.0 and isinstance(roundtrip(3, float), float)


def test_dataclass_payload_ignores_unknown_keys_and_fills_defaults():
    payload = CONV.to_payload({"x": 1, "extra": True})
    assert CONV.from_payload(payload, Point) == Point(1, 0.0)


@pytest.mark.parametrize("value,hint", [
    ("abc", int), (1, str), ({"y": 1.0}, Point), ("purple", Color), (None, int),
    ([1, 2, 3], tuple[int, int]),
])
def test_values_that_do_not_fit_the_hint_raise_value_error(value, hint):
    with pytest.raises(ValueError):
        roundtrip(value, hint)


def test_unencodable_value_raises_type_error():
    with pytest.raises(TypeError, match="object"):
        CONV.to_payloads([object()])


def test_garbage_bytes_raise_value_error():
    with pytest.raises(ValueError, match="CBOR"):
        CONV.from_payload(b"\xff\xff\xff")


def test_extra_payloads_beyond_hints_decode_untyped():
    assert CONV.from_payloads(CONV.to_payloads([Point(1), Point(2)]), [Point]) == [
        Point(1), {"x": 2, "y": 0.0}]


points = st.builds(Point, x=st.integers(-(2**63), 2**63 - 1),
                   y=st.floats(allow_nan=False))
shapes = st.builds(
    Shape, name=st.text(), points=st.lists(points, max_size=4),
    color=st.sampled_from(Color), center=st.none() | points,
    tags=st.dictionaries(st.text(max_size=5), points, max_size=3),
    when=st.none() | st.datetimes(timezones=st.just(timezone.utc)),
    level=st.sampled_from(Level), span=st.tuples(st.integers(), st.integers()))


@given(st.lists(shapes, max_size=3))
def test_any_list_of_shapes_round_trips(values):
    assert roundtrip(values, list[Shape]) == values


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=20)


@given(json_like)
def test_any_plain_value_round_trips_untyped(value):
    assert roundtrip(value) == value

"""The payload converter (as ``temporalio.converter``): user values <-> opaque payload bytes.

Owns: turning arguments, results, heartbeat and failure details into CBOR bytes, and back
into the types the receiving function declares (dataclasses nested in Optional, list,
dict, tuple; enums; datetimes; UUIDs; bytes), as temporalio's JSON converter does with
type hints. Must not: know about the wire, the server or the event loop. Payloads are
opaque to the server (DESIGN §1); this is the only place the SDK makes payload bytes.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import enum
import types
import typing
import uuid
from typing import Any, Optional, Sequence, Union, get_args, get_origin

import cbor2

__all__ = [
    "DataConverter", "PayloadConverter", "default", "value_to_type",
    "encode_search_attributes", "decode_search_attributes",
]


class PayloadConverter:
    """Encodes one value into one CBOR payload and decodes it with an optional type hint."""

    def to_payload(self, value: Any) -> bytes:
        """Encode ``value``.

        Raises:
            TypeError: The value (or something inside it) has no CBOR form.
        """
        return cbor2.dumps(_to_plain(value))

    def from_payload(self, payload: bytes, type_hint: Any = None) -> Any:
        """Decode ``payload``; with ``type_hint``, rebuild dataclasses, enums, datetimes, ....

        Raises:
            ValueError: The bytes are not CBOR, or the value does not fit ``type_hint``.
        """
        try:
            plain = cbor2.loads(payload)
        except Exception as exc:  # cbor2 raises several types for bad bytes; one meaning
            raise ValueError(f"payload is not valid CBOR: {exc}") from None
        return value_to_type(type_hint, plain)


@dataclasses.dataclass(frozen=True)
class DataConverter:
    """Converts lists of values to payload lists and back (``temporalio.converter.DataConverter``).

    Attributes:
        payload_converter: How each single value becomes bytes.
    """

    payload_converter: PayloadConverter = dataclasses.field(default_factory=PayloadConverter)

    default: typing.ClassVar[DataConverter]

    def to_payload(self, value: Any) -> bytes:
        """Encode one value."""
        return self.payload_converter.to_payload(value)

    def from_payload(self, payload: bytes, type_hint: Any = None) -> Any:
        """Decode one value, rebuilt as ``type_hint`` when given."""
        return self.payload_converter.from_payload(payload, type_hint)

    def to_payloads(self, values: Sequence[Any]) -> list[bytes]:
        """Encode each value into its own payload."""
        return [self.payload_converter.to_payload(v) for v in values]

    def from_payloads(
        self, payloads: Sequence[bytes], type_hints: Optional[list[Any]] = None
    ) -> list[Any]:
        """Decode payloads; ``type_hints[i]`` (when present) types the i-th value.

        Extra payloads beyond the hints decode untyped, as temporalio does.
        """
        hints = type_hints or []
        return [
            self.payload_converter.from_payload(p, hints[i] if i < len(hints) else None)
            for i, p in enumerate(payloads)
        ]


DataConverter.default = DataConverter()


_SEARCH_ATTRIBUTE_TYPES = (str, int, float, bool, datetime.datetime)


def encode_search_attributes(attributes: typing.Mapping[str, Any]) -> dict[str, bytes]:
    """Search attribute values as the node reads them to filter lists.

    Always the default converter, whatever the client's: the node decodes these bytes to
    evaluate list queries, unlike every other payload. A ``None`` value (for
    ``upsert_search_attributes``) becomes empty bytes: "remove this key".

    Raises:
        TypeError: A value is not a str, int, float, bool, datetime or list of those.
    """
    out: dict[str, bytes] = {}
    for key, value in attributes.items():
        if value is None:
            out[key] = b""
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not isinstance(item, _SEARCH_ATTRIBUTE_TYPES):
                raise TypeError(
                    f"search attribute {key!r}: {type(item).__name__} values cannot be searched;"
                    " use str, int, float, bool, datetime, or a list of those"
                )
        out[key] = DataConverter.default.to_payload(list(value) if isinstance(value, tuple) else value)
    return out


def decode_search_attributes(encoded: typing.Mapping[str, bytes]) -> dict[str, Any]:
    """The values ``encode_search_attributes`` wrote (datetimes come back as ISO strings)."""
    out: dict[str, Any] = {}
    for key, payload in encoded.items():
        try:
            out[key] = DataConverter.default.from_payload(payload)
        except ValueError:  # not written by an SDK: keep the raw bytes
            out[key] = payload
    return out


def default() -> DataConverter:
    """The default converter (CBOR)."""
    return DataConverter.default


# --------------------------------------------------------------------------------------
# Encoding: user values -> CBOR-native values
# --------------------------------------------------------------------------------------


def _to_plain(value: Any) -> Any:
    # Enum first: an IntEnum is also an int, and must travel as its value.
    if isinstance(value, enum.Enum):
        return _to_plain(value.value)
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, datetime.datetime):
        # cbor2 refuses naive datetimes; an ISO string decodes back through the type hint.
        return value if value.tzinfo is not None else value.isoformat()
    if isinstance(value, (datetime.date, uuid.UUID)):
        return value
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        # Sorted when possible so equal sets give equal bytes.
        items = [_to_plain(v) for v in value]
        try:
            items.sort()
        except TypeError:
            pass
        return items
    if isinstance(value, collections.abc.Mapping):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    raise TypeError(f"Value of type {type(value).__name__} is not serializable to a payload")


# --------------------------------------------------------------------------------------
# Decoding: CBOR-native values + type hint -> user values
# --------------------------------------------------------------------------------------

_DT_TYPES = (datetime.datetime, datetime.date, datetime.timedelta, uuid.UUID)


def value_to_type(hint: Any, value: Any) -> Any:
    """Rebuild ``value`` (as decoded from CBOR) as type ``hint``.

    ``None`` or ``Any`` hints return the value unchanged. Unknown classes are returned
    unchanged too, so a converter never blocks a value it cannot type.

    Raises:
        ValueError: The value cannot be the hinted type.
    """
    if hint is None or hint is Any or isinstance(hint, typing.TypeVar):
        return value
    if isinstance(hint, typing.NewType):
        return value_to_type(hint.__supertype__, value)
    origin = get_origin(hint)
    if origin is typing.Annotated:
        return value_to_type(get_args(hint)[0], value)
    if origin is Union or origin is types.UnionType:
        return _to_union(hint, value)
    if origin is typing.Literal:
        if value not in get_args(hint):
            raise ValueError(f"{value!r} is not one of {get_args(hint)!r}")
        return value
    if origin is not None:
        return _to_generic(hint, origin, value)
    if isinstance(hint, type):
        return _to_class(hint, value)
    return value


def _to_union(hint: Any, value: Any) -> Any:
    args = get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ValueError(f"None is not allowed for {hint!r}")
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return value_to_type(arg, value)
        except (ValueError, TypeError) as exc:  # try the next member, as temporalio does
            errors.append(str(exc))
    raise ValueError(f"{value!r} fits no member of {hint!r}: {'; '.join(errors)}")


def _to_generic(hint: Any, origin: Any, value: Any) -> Any:
    args = get_args(hint)
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence,
                  collections.abc.Iterable, collections.abc.Collection):
        _expect(value, list, hint)
        item = args[0] if args else None
        return [value_to_type(item, v) for v in value]
    if origin in (set, frozenset, collections.abc.Set, collections.abc.MutableSet):
        _expect(value, (list, set, frozenset), hint)
        item = args[0] if args else None
        items = [value_to_type(item, v) for v in value]
        return frozenset(items) if origin is frozenset else set(items)
    if origin is tuple:
        _expect(value, list, hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(value_to_type(args[0], v) for v in value)
        if args and len(args) != len(value):
            raise ValueError(f"expected {len(args)} items for {hint!r}, got {len(value)}")
        return tuple(value_to_type(args[i] if args else None, v) for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        _expect(value, dict, hint)
        ktp, vtp = (args + (None, None))[:2] if args else (None, None)
        return {value_to_type(ktp, k): value_to_type(vtp, v) for k, v in value.items()}
    if origin is type:
        return value
    return value


def _to_class(cls: type, value: Any) -> Any:
    if issubclass(cls, enum.Enum):
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None
    if dataclasses.is_dataclass(cls):
        return _to_dataclass(cls, value)
    if cls in _DT_TYPES:
        return _to_time_or_uuid(cls, value)
    if cls is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if cls is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        return value
    if cls in (str, bool, bytes):
        _expect(value, cls, cls)
        return value
    if cls in (list, tuple, set, frozenset, dict):
        return value if isinstance(value, cls) else cls(value)
    if cls is type(None):
        if value is not None:
            raise ValueError(f"expected None, got {type(value).__name__}")
        return None
    return value


def _to_dataclass(cls: type, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    _expect(value, dict, cls)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        # Unknown keys are ignored and missing ones take the field default, so a payload
        # written by an older or newer version of the dataclass still decodes.
        if f.init and f.name in value:
            kwargs[f.name] = value_to_type(hints.get(f.name), value[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"cannot build {cls.__name__}: {exc}") from None


def _to_time_or_uuid(cls: type, value: Any) -> Any:
    if cls is datetime.datetime:
        if isinstance(value, datetime.datetime):
            return value
        _expect(value, str, cls)
        return datetime.datetime.fromisoformat(value)
    if cls is datetime.date:
        if isinstance(value, datetime.date):
            return value
        _expect(value, str, cls)
        return datetime.date.fromisoformat(value)
    if cls is datetime.timedelta:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected seconds for timedelta, got {type(value).__name__}")
        return datetime.timedelta(seconds=value)
    if isinstance(value, uuid.UUID):
        return value
    _expect(value, (str, bytes), cls)
    return uuid.UUID(value) if isinstance(value, str) else uuid.UUID(bytes=value)


def _expect(value: Any, types_: Any, hint: Any) -> None:
    if not isinstance(value, types_) or (types_ is not bool and isinstance(value, bool)
                                          and types_ in (int, float)):
        raise ValueError(f"expected {hint!r}, got {type(value).__name__}")

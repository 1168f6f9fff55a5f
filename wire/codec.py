"""The generic dataclass <-> CBOR codec with type and limit checks, and the tagged-union registry.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import cbor2

from shoal.wire.errors import (
    COLLECTION_ITEMS_MAX,
    Code,
    FRAME_BYTES_MAX,
    LIST_DEPTH_MAX,
    PAYLOAD_BYTES_MAX,
    WireError,
)


T = TypeVar("T")

_Decoder = Callable[[Any, int], Any]
_DECODERS: dict[Any, _Decoder] = {}
_ENCODERS: dict[type, Callable[[Any], Any]] = {}
_TAGGED: dict[int, type] = {}
_FIELDS_OF: dict[type, list[tuple[str, Any, bool, bool]]] = {}  # per dataclass, for _build
_SCALARS = (bool, int, float, str, bytes)


def _malformed(path: str, msg: str) -> WireError:
    return WireError(Code.MALFORMED, f"{path}: {msg}")


# --- encoding -----------------------------------------------------------------------------
# Each dataclass gets an encoder built once from its fields: the hot path (every frame and
# every stored record) then runs no type introspection.


def to_plain(value: Any) -> Any:
    """Turn a message (dataclass tree) into CBOR-ready plain values.

    Dataclasses become maps keyed by field name; fields equal to ``None`` are left out to
    keep frames small. A union-typed field holding a dataclass with a ``KIND`` class
    variable is written as ``{"k": KIND, "v": {...}}`` so it can be decoded again.
    """
    if value is None:
        return None
    cls = type(value)
    if cls in _SCALARS:
        return value
    enc = _ENCODERS.get(cls)
    if enc is not None:
        return enc(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return _compile_encoder(cls)(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, _SCALARS):  # subclasses (IntEnum handled above)
        return value
    raise TypeError(f"cannot encode {cls.__name__}")


def _compile_encoder(cls: type) -> Callable[[Any], Any]:
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    kind = getattr(cls, "KIND", None)
    tag = int(kind) if kind is not None and getattr(cls, "TAGGED", False) else None

    def encode(value: Any) -> Any:
        out: dict[str, Any] = {}
        for name in names:
            v = getattr(value, name)
            if v is not None:
                out[name] = v if type(v) in _SCALARS else to_plain(v)
        return out if tag is None else {"k": tag, "v": out}

    _ENCODERS[cls] = encode
    return encode


# --- decoding -----------------------------------------------------------------------------


def from_plain(tp: Any, value: Any, path: str = "$", depth: int = 0) -> Any:
    """Check ``value`` against type ``tp`` and build it; raise ``WireError`` if it does not fit.

    The error message names where in ``value`` the problem is (``$.body.input[2]: ...``).
    """
    dec = _DECODERS.get(tp) or _compile_decoder(tp)
    try:
        return dec(value, depth)
    except _Bad as bad:
        raise WireError(Code.MALFORMED, f"{path}{bad.where}: {bad.what}") from None


class _Bad(Exception):
    """A decode failure on its way up; each level prepends its part of the path.

    Paths are only built on failure, so the success path makes no strings.
    """

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = what, where

    def under(self, segment: str) -> _Bad:
        self.where = segment + self.where
        return self


def _compile_decoder(tp: Any) -> _Decoder:
    """Build (once per type) the function that checks and builds values of ``tp``."""
    dec = _make_decoder(tp)
    _DECODERS[tp] = dec
    return dec


def _make_decoder(tp: Any) -> _Decoder:
    origin = get_origin(tp)
    if tp is Any:
        return lambda v, d: v
    if origin is Union or origin is types.UnionType:
        return _union_decoder(tp)
    if origin in (list, tuple):
        return _list_decoder(get_args(tp)[0], origin is tuple)
    if origin is dict:
        return _dict_decoder(*get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if tp is float:
        return _float_decoder
    if tp is int:
        return _int_decoder
    if tp in (str, bytes, bool):
        return _exact_decoder(tp)
    if dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise TypeError(f"unsupported type {tp!r}")  # our bug, not the peer's


def _float_decoder(v: Any, depth: int) -> float:
    if type(v) is float:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"expected a number, got {type(v).__name__}")
    return float(v)


def _int_decoder(v: Any, depth: int) -> int:
    if type(v) is int:
        return v
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"expected an integer, got {type(v).__name__}")
    return v


def _exact_decoder(tp: type) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if type(v) is not tp:
            raise _Bad(f"expected {tp.__name__}, got {type(v).__name__}")
        if tp is str and len(v) > PAYLOAD_BYTES_MAX:
            raise _Bad("string too long")
        return v

    return dec


def _enum_decoder(tp: type[enum.Enum]) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        try:
            return tp(v)
        except (ValueError, TypeError):
            raise _Bad(f"{v!r} is not a valid {tp.__name__}") from None

    return dec


def _union_decoder(tp: Any) -> _Decoder:
    args = get_args(tp)
    nullable = type(None) in args
    non_none = [a for a in args if a is not type(None)]
    if len(non_none) == 1:
        inner = non_none[0]

        def dec(v: Any, depth: int) -> Any:
            if v is None:
                if nullable:
                    return None
                raise _Bad("must not be null")
            return (_DECODERS.get(inner) or _compile_decoder(inner))(v, depth)

        return dec

    def dec_tagged(v: Any, depth: int) -> Any:
        if v is None:
            if nullable:
                return None
            raise _Bad("must not be null")
        return _from_tagged(non_none, v, depth)

    return dec_tagged


def _list_decoder(item: Any, as_tuple: bool) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if type(v) is not list:
            raise _Bad(f"expected a list, got {type(v).__name__}")
        if len(v) > COLLECTION_ITEMS_MAX:
            raise _Bad("too many items")
        item_dec = _DECODERS.get(item) or _compile_decoder(item)
        if item is bytes:
            for i, x in enumerate(v):
                if type(x) is not bytes:
                    raise _Bad(f"expected bytes, got {type(x).__name__}", f"[{i}]")
            out = list(v)
        else:
            try:
                out = [item_dec(x, depth + 1) for x in v]
            except _Bad as bad:
                i = next(i for i, x in enumerate(v) if _fails(item_dec, x, depth + 1))
                raise bad.under(f"[{i}]") from None
        return tuple(out) if as_tuple else out

    return dec


def _dict_decoder(ktp: type, vtp: Any) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if type(v) is not dict:
            raise _Bad(f"expected a map, got {type(v).__name__}")
        if len(v) > COLLECTION_ITEMS_MAX:
            raise _Bad("too many items")
        val_dec = _DECODERS.get(vtp) or _compile_decoder(vtp)
        out = {}
        for k, x in v.items():
            if not isinstance(k, ktp) or (ktp is int and isinstance(k, bool)):
                raise _Bad(f"map key {k!r} must be {ktp.__name__}")
            try:
                out[k] = val_dec(x, depth + 1)
            except _Bad as bad:
                raise bad.under(f".{k}") from None
        return out

    return dec


def _dataclass_decoder(cls: type) -> _Decoder:
    hints = get_type_hints(cls)
    # (name, type, required-and-not-optional, default-is-None-when-missing)
    fields = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        fields.append((f.name, hints[f.name], has_default, _optional(hints[f.name])))
    is_tagged = getattr(cls, "TAGGED", False)
    _FIELDS_OF[cls] = fields

    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if is_tagged and type(v) is dict and "k" in v and "v" in v:
            return _from_tagged([cls], v, depth)
        return _build(cls, fields, v, depth)

    return dec


def _build(cls: type, fields: list[tuple[str, Any, bool, bool]], v: Any, depth: int) -> Any:
    if type(v) is not dict:
        raise _Bad(f"expected a map for {cls.__name__}, got {type(v).__name__}")
    kwargs: dict[str, Any] = {}
    for name, tp, has_default, optional in fields:
        if name in v:
            try:
                kwargs[name] = (_DECODERS.get(tp) or _compile_decoder(tp))(v[name], depth + 1)
            except _Bad as bad:
                raise bad.under(f".{name}") from None
        elif not has_default:
            if optional:
                kwargs[name] = None
            else:
                raise _Bad(f"missing field {name!r} of {cls.__name__}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _Bad(str(exc)) from None


def _optional(tp: Any) -> bool:
    origin = get_origin(tp)
    return (origin is Union or origin is types.UnionType) and type(None) in get_args(tp)


def _from_tagged(choices: list[Any], value: Any, depth: int) -> Any:
    if not isinstance(value, dict) or "k" not in value or "v" not in value:
        raise _Bad("expected a tagged value {k, v}")
    cls = _TAGGED.get(value["k"]) if type(value["k"]) is int else None
    if cls is None or not any(cls is c for c in choices):
        raise _Bad(f"unexpected kind {value['k']!r}")
    if cls not in _FIELDS_OF:
        _compile_decoder(cls)
    # Build directly (not via the decoder) so an inner map holding "k"/"v" is not re-read.
    return _build(cls, _FIELDS_OF[cls], value["v"], depth + 1)


def _fails(dec: Any, x: Any, depth: int) -> bool:
    try:
        dec(x, depth)
    except _Bad:
        return True
    return False


def tagged(cls: type[T]) -> type[T]:
    """Register a dataclass whose class variable ``KIND`` identifies it inside a union."""
    kind = int(cls.KIND)  # type: ignore[attr-defined]
    assert kind not in _TAGGED, f"duplicate KIND {kind} on {cls.__name__}"
    _TAGGED[kind] = cls
    cls.TAGGED = True  # type: ignore[attr-defined]
    return cls


def dumps(value: Any) -> bytes:
    """CBOR-encode a message or plain value."""
    return cbor2.dumps(to_plain(value))


def loads_plain(data: bytes, limit: int = FRAME_BYTES_MAX) -> Any:
    """Decode CBOR bytes into plain values, refusing oversize or malformed input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(Code.MALFORMED, "a frame must be binary")
    if len(data) > limit:
        raise WireError(
            Code.FRAME_TOO_LARGE, f"frame is {len(data)} bytes; the limit is {limit} bytes"
        )
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on hostile input; all mean one thing
        raise WireError(Code.MALFORMED, f"not valid CBOR: {type(exc).__name__}") from None


def loads(cls: type[T], data: bytes, limit: int = FRAME_BYTES_MAX) -> T:
    """Decode CBOR bytes into an instance of ``cls``, checking every field."""
    return from_plain(cls, loads_plain(data, limit))

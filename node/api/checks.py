"""Checks every request handler applies to ids, payload sizes and waits.

Owns: the named errors for an id that is empty or too long and a payload over the limit,
and the longest wait a long poll may ask for. Must not: know about ops or state.
"""

from __future__ import annotations

from shoal import wire

POLL_WAIT_MAX_S = 60.0


def check_id(name: str, value: str, *, required: bool = True) -> None:
    if required and not value:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"{name} must not be empty")
    if len(value) > wire.ID_CHARS_MAX:
        raise wire.ShoalError(
            wire.Code.INVALID_ARGUMENT,
            f"{name} is {len(value)} characters; the limit is {wire.ID_CHARS_MAX}",
        )


def check_payloads(name: str, payloads: list[bytes] | None) -> None:
    size = wire.payloads_size(payloads)
    if size > wire.PAYLOAD_BYTES_MAX:
        raise wire.ShoalError(
            wire.Code.PAYLOAD_TOO_LARGE,
            f"{name} is {size} bytes; the limit is {wire.PAYLOAD_BYTES_MAX} bytes",
        )

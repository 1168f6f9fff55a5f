"""What a handle needs of its ``Client``: the connection, the data converter, the identity.

Owns: the ``ClientParts`` protocol, so ``_handle.py`` and ``_async_activity.py`` type their
client without importing ``client.py`` (which imports them: no circle). Must not: hold
behaviour.
"""

from __future__ import annotations

from typing import Protocol

from shoal.sdk.connection import ServiceConnection
from shoal.sdk.converter import DataConverter


class ClientParts(Protocol):
    """The part of ``shoal.sdk.client.Client`` a ``WorkflowHandle`` calls through."""

    service: ServiceConnection
    data_converter: DataConverter

    @property
    def identity(self) -> str: ...

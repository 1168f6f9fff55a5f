"""``shoal.service``: the connection to a node and its error type (mirrors ``temporalio.service``)."""

from shoal.sdk.connection import ConnectionLost, RPCError, ServiceConnection

__all__ = ["ConnectionLost", "RPCError", "ServiceConnection"]

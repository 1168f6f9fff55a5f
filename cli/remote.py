"""Running one command against a node: the address option, the call, one-line errors.

Owns: what every client-side command (``shoal workflow ...``, ``shoal cluster ...``)
shares: ``--address`` / ``SHOAL_ADDRESS``, ``--json``, connecting through the SDK client
under trio (as identity ``shoal-cli``), and turning any failure into one line on stderr with
exit code 1.
Must not: import ``shoal.node`` (a client command stays light and runs anywhere).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from shoal import wire

DEFAULT_ADDRESS = "ws://127.0.0.1:7350"
IDENTITY = "shoal-cli"  # recorded in the history events a command causes
T = TypeVar("T")

ADDRESS = typer.Option(DEFAULT_ADDRESS, "--address", envvar="SHOAL_ADDRESS",
                       help="The node to talk to (any node of the cluster).")
JSON_OUT = typer.Option(False, "--json", help="Print JSON instead of tables.")


def out() -> Console:
    """The console for a command's answer (stdout)."""
    return Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # As Text, not markup: the message quotes ids and node answers, which may hold a '['.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text.assemble(("error:", "red"), " ", message))
    raise typer.Exit(code)


def call(address: str, namespace: str, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, run ``fn(client)`` under trio, and turn failures into one-line errors."""
    import trio

    from shoal.sdk.client import Client
    from shoal.sdk.connection import ConnectionLost, RPCError
    from shoal.sdk.exceptions import WorkflowAlreadyStartedError

    async def main() -> T:
        client = await Client.connect(address, namespace=namespace, identity=IDENTITY)
        try:
            return await fn(client)
        finally:
            await client.close()

    try:
        return trio.run(main)
    except RPCError as exc:
        fail(f"{exc.message} [{exc.code}]")
    except WorkflowAlreadyStartedError as exc:
        # The client raises it in place of the node's RPCError (kept as its context), whose
        # message says why (running, or the reuse policy) and names the run.
        node = exc.__context__
        fail(f"{node.message} [{node.code}]" if isinstance(node, RPCError) else
             f"workflow {exc.workflow_id!r} is already started (run {exc.run_id}) "
             f"[{wire.Code.WORKFLOW_ALREADY_STARTED}]")
    except (ConnectionLost, OSError) as exc:
        fail(f"cannot reach a node at {address} ({exc or type(exc).__name__}); start one with "
             "`shoal node start` or point --address / SHOAL_ADDRESS at one")
    except KeyboardInterrupt:
        fail("interrupted", 130)

"""Updates waiting on this node: delivered to workers with workflow tasks, answered when
their outcome commits.

Owns: per run, the update requests not yet accepted (they ride on every workflow task the
run starts until a worker accepts or rejects them) and the callers waiting for outcomes.
Soft state: if the node restarts, callers retry with the same update id; an update that
was accepted is recognised from the run's state and answered when it completes. Must not:
write anything (the history engine records accepted and completed updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from shoal import wire

RunKey = tuple[str, str, str]  # namespace, workflow id, run id


@dataclass(eq=False, slots=True)
class PendingUpdate:
    request: wire.UpdateRequest
    accepted: bool = False
    done: trio.Event = field(default_factory=trio.Event)
    outcome: wire.UpdateOutcome | None = None
    # Set once a worker accepted it (or it settled): a caller waiting for ACCEPTED wakes.
    reached_accepted: trio.Event = field(default_factory=trio.Event)

    def mark_accepted(self) -> None:
        self.accepted = True
        self.reached_accepted.set()


class Updates:
    """The node's waiting updates, by run."""

    def __init__(self) -> None:
        self._by_run: dict[RunKey, dict[str, PendingUpdate]] = {}

    def register(self, key: RunKey, request: wire.UpdateRequest, *, accepted: bool) -> PendingUpdate:
        """The waiter for ``request`` (the existing one if the same id is already waiting)."""
        run = self._by_run.setdefault(key, {})
        pending = run.get(request.update_id)
        if pending is None:
            pending = run[request.update_id] = PendingUpdate(request=request)
        if accepted:
            pending.mark_accepted()
        return pending

    def find(self, key: RunKey, update_id: str) -> PendingUpdate | None:
        """The waiter of an update this node holds and has not settled, if any."""
        return self._by_run.get(key, {}).get(update_id)

    def unaccepted(self, key: RunKey) -> list[wire.UpdateRequest]:
        """Requests a workflow task of this run must carry."""
        return [p.request for p in self._by_run.get(key, {}).values() if not p.accepted]

    def settle(self, key: RunKey, accepted: list[str], outcomes: dict[str, wire.UpdateOutcome]) -> None:
        """An entry committed: mark accepted updates, answer settled ones."""
        run = self._by_run.get(key)
        if not run:
            return
        for uid in accepted:
            if uid in run:
                run[uid].mark_accepted()
        for uid, outcome in outcomes.items():
            pending = run.pop(uid, None)
            if pending is not None:
                pending.outcome = outcome
                pending.done.set()
                pending.reached_accepted.set()
        if not run:
            del self._by_run[key]

    def forget(self, key: RunKey, pending: PendingUpdate) -> None:
        """The caller gave up: stop offering an update no worker has accepted."""
        run = self._by_run.get(key)
        if run is not None and run.get(pending.request.update_id) is pending and not pending.accepted:
            del run[pending.request.update_id]
            if not run:
                del self._by_run[key]

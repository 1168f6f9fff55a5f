"""Linearizability checker for the replication simulator's client history.

Owns: the model (an append-only log of unique values; a write appends one value, a read
returns the whole log as ``(length, digest)``) and two checkers for it:

- :func:`check_log_history` — fast, O(n log n). The committed log fixes the order of the
  writes that took effect, so the only freedom left is where reads sit. A history is
  linearizable iff every "a finished before b started" pair respects the positions:
  write->write ``p(a) < p(b)``, write->read ``p(a) <= L(b)``, read->write
  ``L(a) < p(b)``, read->read ``L(a) <= L(b)``; then sorting ops by (position, writes
  before reads, start time) is a legal sequential history that respects real time.
- :func:`check_brute_force` — the Wing & Gong / Porcupine search over every order, for
  small histories; tests use it to show the fast checker agrees with the definition.

An op whose answer never arrived (``end=None``) may take effect at any time after its
start or never (Porcupine's treatment); a write answered "failed" must never appear.
Must not: know about replication internals.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

INF = float("inf")


def digest(values: Sequence[int]) -> str:
    """Digest of a log of values (what a read returns with the length)."""
    h = hashlib.blake2b(digest_size=8)
    for v in values:
        h.update(v.to_bytes(8, "big", signed=True))
    return h.hexdigest()


def digest_step(prev: str, value: int) -> str:
    """Digest after appending ``value`` to a log whose digest is ``prev`` (a chain: the
    simulator keeps it incrementally). ``digest_chain`` of a list folds this."""
    return hashlib.blake2b(bytes.fromhex(prev) + value.to_bytes(8, "big", signed=True),
                           digest_size=8).hexdigest()


EMPTY = "0" * 16


def digest_chain(values: Sequence[int]) -> str:
    d = EMPTY
    for v in values:
        d = digest_step(d, v)
    return d


@dataclass(slots=True)
class Op:
    """One client operation. ``status``: "ok", "fail" (definitely no effect) or "unknown"
    (no answer). Reads carry ``length`` and ``digest`` when ok."""

    id: int
    kind: str  # "w" or "r"
    start: float
    end: float | None = None
    status: str = "pending"
    value: int = 0
    length: int = 0
    digest: str = ""


def check_log_history(ops: Sequence[Op], final_log: Sequence[int]) -> list[str]:
    """Violations of linearizability of ``ops`` given the committed log of values."""
    bad: list[str] = []
    pos = {v: i + 1 for i, v in enumerate(final_log)}
    if len(pos) != len(final_log):
        bad.append("a value was committed twice")
    chain = [EMPTY]
    for v in final_log:
        chain.append(digest_step(chain[-1], v))
    points: list[tuple[Op, int, bool]] = []  # (op, position, is_write)
    for op in ops:
        if op.kind == "w":
            if op.value in pos:
                if op.status == "fail":
                    bad.append(f"write {op.id} failed but its value was committed")
                points.append((op, pos[op.value], True))
            elif op.status == "ok":
                bad.append(f"acknowledged write {op.id} (value {op.value}) was lost")
        elif op.status == "ok":
            if op.length > len(final_log) or chain[op.length] != op.digest:
                bad.append(f"read {op.id} saw a log that is not a prefix of the committed one")
            else:
                points.append((op, op.length, False))
    # Prefix maxima, by end time, of write positions and read lengths.
    done = sorted(((o.end, p, w) for o, p, w in points if o.end is not None and o.status == "ok"),
                  key=lambda t: t[0])
    ends = [t[0] for t in done]
    max_w, max_r, mw, mr = [], [], 0, -1
    for _, p, w in done:
        if w:
            mw = max(mw, p)
        else:
            mr = max(mr, p)
        max_w.append(mw)
        max_r.append(mr)
    for op, p, w in points:
        k = bisect.bisect_left(ends, op.start)  # ops that ended strictly before op started
        if k == 0:
            continue
        pw, pr = max_w[k - 1], max_r[k - 1]
        if w and (pw >= p or pr >= p):
            bad.append(f"write {op.id} at position {p} is ordered before an op that "
                       f"finished before it started (write pos {pw}, read len {pr})")
        if not w and (pw > p or pr > p):
            bad.append(f"read {op.id} of length {p} is stale (an earlier op saw "
                       f"write pos {pw}, read len {pr})")
    return bad


def check_brute_force(ops: Sequence[Op], final_log: Sequence[int]) -> bool:
    """True iff some order of ``ops`` is legal for the model, respects real time, and
    ends in ``final_log``. Exponential: for histories of a handful of ops."""
    live = [o for o in ops if not (o.kind == "r" and o.status != "ok")
            and not (o.kind == "w" and o.status == "fail")]
    optional = [o for o in live if o.kind == "w" and o.status != "ok"]
    required = [o for o in live if o not in optional]
    for r in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, r):
            if _search(required + list(chosen), final_log):
                return True
    return False


def _search(ops: list[Op], final_log: Sequence[int]) -> bool:
    end = {o.id: (o.end if o.end is not None and o.status == "ok" else INF) for o in ops}
    for order in itertools.permutations(ops):
        ok, state = True, []
        for i, o in enumerate(order):
            # Real time: nothing later in the order may have finished before o started.
            if any(end[x.id] < o.start for x in order[i + 1:]):
                ok = False
                break
            if o.kind == "w":
                state.append(o.value)
            elif (o.length, o.digest) != (len(state), digest_chain(state)):
                ok = False
                break
        if ok and state == list(final_log):
            return True
    return False

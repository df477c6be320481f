"""Builders and Hypothesis strategies shared by the journal tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.events import Draft, Event, Kind

#: A fixed instant, so that sealed events are reproducible where a test needs it.
TS = "2024-01-02T03:04:05.000006Z"


def chain(
    drafts: Iterable[Draft],
    *,
    start_seq: int = 1,
    prev: str = GENESIS,
    ts: str | None = None,
    fixed_ids: bool = False,
) -> list[Event]:
    """Seal `drafts` into a valid chain starting at `start_seq` after `prev`.

    With `ts` and `fixed_ids` the result is the same on every call.
    """
    events = []
    seq = start_seq
    for draft in drafts:
        id_ = str(uuid.UUID(int=seq)) if fixed_ids else None
        event = seal(draft, seq=seq, prev=prev, ts=ts, id=id_)
        events.append(event)
        seq, prev = seq + 1, event.hash
    return events


def simple_drafts(n: int, *, run_id: str = "run-1") -> list[Draft]:
    """`n` small drafts (version = index) with distinct payloads, unicode included."""
    return [Draft(run_id, Kind.RECOVERY_STARTED, i, {"i": i, "note": f"é☃𝄞 {i}"}) for i in range(n)]


def events(n: int, *, run_id: str = "run-1") -> list[Event]:
    """A valid chain of `n` events, the same on every call (fixed ts and ids)."""
    return chain(simple_drafts(n, run_id=run_id), ts=TS, fixed_ids=True)


def d(
    kind: Kind,
    version: int | None = None,
    *,
    by: str = "r1",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> Draft:
    """A draft of `kind` recorded by run `by`, its data from `data` and keyword `fields`."""
    return Draft(by, kind, version, {**(data or {}), **fields})


def reseal_from(evs: Sequence[Event], index: int, replacement: Draft) -> list[Event]:
    """`evs` with the event at `index` replaced by `replacement` and the rest re-chained."""
    head = list(evs[:index])
    prev = head[-1].hash if head else GENESIS
    tail = [replacement] + [Draft(e.run_id, e.kind, e.version, e.data) for e in evs[index + 1 :]]
    return head + chain(tail, start_seq=index + 1, prev=prev)


# -- strategies ---------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.text(max_size=12)
)

json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

versions = st.none() | st.integers(min_value=0, max_value=2**31)

run_ids = st.text(min_size=1, max_size=12)


def drafts(kind: st.SearchStrategy[Kind] | None = None) -> st.SearchStrategy[Draft]:
    """Drafts of any kind of a plain chain (or of `kind`) with arbitrary JSON-able data.

    `journal_keyed` is left out: from it on a chain is sealed with a key (test_chain.py).
    """
    plain = [k for k in Kind if k is not Kind.JOURNAL_KEYED]
    return st.builds(
        Draft,
        run_id=run_ids,
        kind=kind if kind is not None else st.sampled_from(plain),
        version=versions,
        data=json_objects,
    )


# Well-formed payloads for replay: each kind with the fields the engine writes.
_runs = st.sampled_from(["r1", "r2", "r3"])
_backup_ids = st.sampled_from(["b1", "b2", "b3"])
_small = st.integers(min_value=0, max_value=6)
_word = st.text(alphabet="abcxyz", max_size=4)

_payloads: dict[Kind, st.SearchStrategy[tuple[int | None, dict]]] = {
    Kind.RUN_STARTED: st.tuples(st.none(), st.fixed_dictionaries({"command": _word})),
    Kind.RUN_FINISHED: st.tuples(
        st.none(),
        st.fixed_dictionaries({"outcome": st.sampled_from(["succeeded", "failed"])}),
    ),
    Kind.LOCK_ACQUIRED: st.tuples(
        st.none(), st.fixed_dictionaries({"pid": _small, "host": _word, "command": _word})
    ),
    Kind.LOCK_RELEASED: st.tuples(st.none(), st.just({})),
    Kind.BACKUP_TAKEN: st.tuples(
        st.none(),
        st.fixed_dictionaries(
            {"id": _backup_ids, "version": _small, "size": _small, "verified": st.booleans()}
        ),
    ),
    Kind.BACKUP_VERIFIED: st.tuples(st.none(), st.fixed_dictionaries({"id": _backup_ids})),
    Kind.BACKUP_REMOVED: st.tuples(st.none(), st.fixed_dictionaries({"id": _backup_ids})),
    Kind.RESTORE_STARTED: st.tuples(st.none(), st.fixed_dictionaries({"backup_id": _backup_ids})),
    Kind.BACKUP_RESTORED: st.tuples(st.none(), st.fixed_dictionaries({"version": _small})),
    Kind.RESTORE_FAILED: st.tuples(st.none(), st.fixed_dictionaries({"backup_id": _backup_ids})),
    Kind.STEP_STARTED: st.tuples(
        _small, st.fixed_dictionaries({"direction": st.sampled_from(["up", "down"])})
    ),
    Kind.STEP_APPLIED: st.tuples(
        _small, st.fixed_dictionaries({"name": _word, "fingerprint_after": _word})
    ),
    Kind.STEP_REVERTED: st.tuples(_small, st.fixed_dictionaries({"to_version": _small})),
    Kind.VERIFICATION_FAILED: st.tuples(_small, st.fixed_dictionaries({"error": _word})),
    Kind.STEP_FAILED: st.tuples(_small, st.fixed_dictionaries({"error": _word})),
    Kind.ROLLED_BACK: st.tuples(_small, st.fixed_dictionaries({"error": _word})),
    Kind.DRIFT_DETECTED: st.tuples(
        st.none(), st.fixed_dictionaries({"allowed": st.booleans(), "actual": _word})
    ),
    Kind.BASELINE_SET: st.tuples(_small, st.just({})),
    Kind.RECOVERY_STARTED: st.tuples(st.none(), st.just({})),
    Kind.RECOVERY_FINISHED: st.tuples(st.none(), st.just({})),
    Kind.ATTEMPT_INTERRUPTED: st.tuples(
        _small, st.fixed_dictionaries({"run_id": _runs, "run_interrupted": st.booleans()})
    ),
    Kind.JOURNAL_REPAIRED: st.tuples(st.none(), st.just({})),
    Kind.CHECKSUM_ACCEPTED: st.tuples(_small, st.fixed_dictionaries({"new": _word})),
    Kind.JOURNAL_KEYED: st.tuples(st.none(), st.fixed_dictionaries({"since_seq": _small})),
    # In a replay from the first event a checkpoint changes nothing (tests/journal/test_checkpoint.py).
    Kind.CHECKPOINT: st.tuples(st.none(), st.just({})),
    # Fleet kinds live in the fleet journal; a database's replay ignores them.
    Kind.FLEET_STARTED: st.tuples(st.none(), st.just({})),
    Kind.DATABASE_STARTED: st.tuples(st.none(), st.fixed_dictionaries({"database": _word})),
    Kind.DATABASE_FINISHED: st.tuples(st.none(), st.fixed_dictionaries({"database": _word})),
    Kind.FLEET_FINISHED: st.tuples(st.none(), st.just({})),
}
assert set(_payloads) == set(Kind), "every kind needs a replay payload"


@st.composite
def replay_draft(draw: st.DrawFn) -> Draft:
    """A draft of any kind with a payload of the shape the engine writes."""
    kind = draw(st.sampled_from(Kind))
    version, data = draw(_payloads[kind])
    return Draft(draw(_runs), kind, version, data)


replay_chains = st.lists(replay_draft(), max_size=40).map(chain)

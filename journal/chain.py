"""The hash chain: sealing drafts into events and checking a sequence of events."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable

import attrs

from schemalog.journal.clock import now
from schemalog.journal.codec import canonical, converter
from schemalog.journal.events import Draft, Event

__all__ = ["GENESIS", "ChainBreak", "compute_hash", "find_break", "seal"]

#: `prev` of the first event.
GENESIS = "0" * 64


def compute_hash(fields: dict) -> str:
    """SHA-256 hex of the canonical JSON of an event's fields other than `hash`."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def seal(
    draft: Draft, *, seq: int, prev: str, ts: str | None = None, id: str | None = None
) -> Event:
    """The event for `draft` placed at `seq` after the event whose hash is `prev`."""
    fields = {
        "seq": seq,
        "id": id or str(uuid.uuid4()),
        "ts": ts or now(),
        "run_id": draft.run_id,
        "kind": draft.kind.value,
        "version": draft.version,
        # A JSON round trip: the event holds exactly what a reader will read back.
        "data": json.loads(canonical(draft.data)),
        "prev": prev,
    }
    fields["hash"] = compute_hash(fields)
    return converter.structure(fields, Event)


@attrs.frozen
class ChainBreak:
    """Where and why a sequence of events stops being a valid chain."""

    seq: int
    index: int
    reason: str


def find_break(
    events: Iterable[Event], *, start_seq: int = 1, start_prev: str = GENESIS
) -> ChainBreak | None:
    """The first place where `events` is not a gap-free, correctly hashed chain, or None.

    Read-only and pure. Checks, in order: seq is the next number (no gap, no
    duplicate), `prev` is the previous event's hash, `hash` matches the content.
    """
    expect_seq, expect_prev = start_seq, start_prev
    for index, event in enumerate(events):
        if event.seq != expect_seq:
            kind = "duplicate" if event.seq < expect_seq else "missing"
            return ChainBreak(
                event.seq, index, f"expected seq {expect_seq}, found {event.seq} ({kind} seq)"
            )
        if event.prev != expect_prev:
            return ChainBreak(event.seq, index, "prev does not match the previous event's hash")
        if compute_hash(converter.unstructure(event)) != event.hash:
            return ChainBreak(event.seq, index, "hash does not match the event's content")
        expect_seq, expect_prev = event.seq + 1, event.hash
    return None

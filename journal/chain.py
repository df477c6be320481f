"""The hash chain: sealing drafts into events and checking a sequence of events.

Two modes. Without a key, `hash` is the SHA-256 of the canonical JSON of the event's other
fields: it detects accidental damage and an edit of one journal, but anyone can recompute it.
With a secret key (setting `journal_key_file`), events from a `journal_keyed` event on are
sealed with HMAC-SHA-256 under that key: only a key holder can write an event that checks,
so a rewrite of both journals by anyone else is detected. A journal started without a key
stays plain up to its `journal_keyed` event (written by the first command that had the key),
and every event from there on must be keyed. What each mode detects and what it cannot is in
`schemalog help events`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Sequence

import attrs

from schemalog.journal.clock import now
from schemalog.journal.codec import canonical, converter
from schemalog.journal.errors import JournalChainBroken
from schemalog.journal.events import Draft, Event, Kind

__all__ = [
    "GENESIS",
    "KEY_MISMATCH",
    "KEY_MISSING",
    "ChainBreak",
    "compute_hash",
    "digest",
    "find_break",
    "key_id",
    "keyed_since",
    "seal",
    "seal_after",
]

#: `prev` of the first event.
GENESIS = "0" * 64
#: `ChainBreak.key_problem`: the journal is keyed from here on, and no key was given.
KEY_MISSING = "missing"
#: `ChainBreak.key_problem`: the `journal_keyed` event does not check under the key given.
KEY_MISMATCH = "mismatch"


def compute_hash(fields: dict, key: bytes | None = None) -> str:
    """The hex digest of the canonical JSON of an event's fields other than `hash`:
    SHA-256, or HMAC-SHA-256 under `key`."""
    return digest(canonical({k: v for k, v in fields.items() if k != "hash"}).encode("utf-8"), key)


def digest(body: bytes, key: bytes | None = None) -> str:
    """The hex digest of an event's hashed text `body`: SHA-256, or HMAC-SHA-256 under `key`."""
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A public name for `key` (16 hex characters), recorded in `journal_keyed`: it tells a
    wrong key from a forged event in messages, and reveals nothing about the key."""
    return hmac.new(key, b"schemalog journal key id", hashlib.sha256).hexdigest()[:16]


def seal(
    draft: Draft,
    *,
    seq: int,
    prev: str,
    ts: str | None = None,
    id: str | None = None,
    key: bytes | None = None,
) -> Event:
    """The event for `draft` placed at `seq` after the event whose hash is `prev`, its hash
    keyed with `key` when given."""
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
    fields["hash"] = compute_hash(fields, key)
    return converter.structure(fields, Event)


def seal_after(
    drafts: Sequence[Draft],
    *,
    head: tuple[int, str],
    key: bytes | None,
    keyed_since: int | None,
) -> tuple[list[Event], int | None]:
    """`drafts` sealed one after the other after `head` (seq, hash), and the chain's
    `keyed_since` after them. Pure but for the events' ids and times.

    With `key` on a chain plain so far, a `journal_keyed` event comes first: from it on every
    event must check under the key. Raises JournalChainBroken for a keyed chain and no key.
    """
    seq, prev = head
    keyed = keyed_since is not None and keyed_since <= seq
    if keyed and key is None:
        raise JournalChainBroken(
            f"the journal is sealed with a key from seq {keyed_since} on, and no "
            "journal key is configured",
            hint="set journal_key_file (or SCHEMALOG_JOURNAL_KEY_FILE) to the key file",
        )
    if key is not None and not keyed and drafts:
        marker = {"since_seq": seq + 1, "plain_events": seq, "key_id": key_id(key)}
        drafts = [Draft(drafts[0].run_id, Kind.JOURNAL_KEYED, None, marker), *drafts]
        keyed_since = seq + 1
    events = []
    for draft in drafts:
        seq += 1
        event = seal(draft, seq=seq, prev=prev, key=key)
        events.append(event)
        prev = event.hash
    return events, keyed_since


def keyed_since(events: Sequence[Event]) -> int | None:
    """The seq of the `journal_keyed` event among `events`, or the one named by the
    checkpoint they start with (events read from a checkpoint); None: the chain is plain. Pure.
    """
    if events and events[0].seq != 1 and events[0].kind is Kind.CHECKPOINT:
        since = events[0].data.get("keyed_since")
        if isinstance(since, int):
            return since
    for event in events:
        if event.kind is Kind.JOURNAL_KEYED:
            return event.seq
    return None


@attrs.frozen
class ChainBreak:
    """Where and why a sequence of events stops being a valid chain.

    `key_problem` is KEY_MISSING or KEY_MISMATCH when the break is the journal key's (no key
    given for a keyed journal; the `journal_keyed` event does not check under the key given),
    None for any other break.
    """

    seq: int
    index: int
    reason: str
    key_problem: str | None = None


def find_break(
    events: Iterable[Event],
    *,
    start_seq: int = 1,
    start_prev: str = GENESIS,
    key: bytes | None = None,
    keyed: bool = False,
) -> ChainBreak | None:
    """The first place where `events` is not a gap-free, correctly hashed chain, or None.

    Read-only and pure. Checks, in order: seq is the next number (no gap, no duplicate),
    `prev` is the previous event's hash, `hash` matches the content: plain SHA-256 before the
    first `journal_keyed` event (or from the start when `keyed`, for a continuation of a keyed
    chain), HMAC-SHA-256 under `key` from it on.
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
        marker = event.kind is Kind.JOURNAL_KEYED and not keyed
        keyed = keyed or marker
        if keyed and key is None:
            return ChainBreak(
                event.seq,
                index,
                "the journal is sealed with a key from here on (journal_keyed), and no "
                "journal key is configured",
                KEY_MISSING,
            )
        if compute_hash(converter.unstructure(event), key if keyed else None) != event.hash:
            if marker and key is not None:
                return ChainBreak(event.seq, index, _mismatch(event, key), KEY_MISMATCH)
            what = "keyed hash" if keyed else "hash"
            return ChainBreak(event.seq, index, f"{what} does not match the event's content")
        expect_seq, expect_prev = event.seq + 1, event.hash
    return None


def _mismatch(marker: Event, key: bytes) -> str:
    recorded = marker.data.get("key_id")
    if recorded and recorded != key_id(key):
        return (
            f"the journal is sealed with key {recorded} from here on (journal_keyed), and the "
            f"configured key is {key_id(key)}"
        )
    return "the journal_keyed event does not check under the configured key (forged, or edited)"

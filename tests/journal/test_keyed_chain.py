"""Tests for the keyed chain (journal.chain with a key, and the journal that writes it): from a
`journal_keyed` event on, hashes are HMAC-SHA-256 under the journal key; before it, plain."""

from __future__ import annotations

import hashlib
import hmac

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.journal.chain import (
    GENESIS,
    KEY_MISMATCH,
    KEY_MISSING,
    compute_hash,
    find_break,
    key_id,
    keyed_since,
    seal,
)
from schemalog.journal.codec import canonical, unstructure
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalChainBroken
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Journal
from tests.journal.strategies import d, drafts

KEY = b"k" * 32
OTHER = b"o" * 32


def sealed(drafts_: list[Draft], *, key: bytes | None, start: list[Event] | None = None):
    """Seal `drafts_` after `start`, with `key` (as the journal would, marker included)."""
    out = list(start or [])
    for draft in drafts_:
        prev = out[-1].hash if out else GENESIS
        out.append(seal(draft, seq=len(out) + 1, prev=prev, key=key))
    return out


def marker(seq: int, key: bytes) -> Draft:
    """The `journal_keyed` draft the journal writes before the first keyed event."""
    return Draft("r", Kind.JOURNAL_KEYED, None, {"since_seq": seq, "key_id": key_id(key)})


def plain_then_keyed(n_plain: int = 3, n_keyed: int = 3) -> list[Event]:
    """A chain of `n_plain` plain events, then the marker, then `n_keyed` keyed ones."""
    plain = sealed([d(Kind.RUN_STARTED)] * n_plain, key=None)
    return sealed(
        [marker(n_plain + 1, KEY)] + [d(Kind.RUN_FINISHED)] * n_keyed, key=KEY, start=plain
    )


def forge(events: list[Event], index: int, key: bytes | None, **change) -> list[Event]:
    """`events` with event `index` changed and every hash from it on recomputed with `key`."""
    out = list(events[:index])
    for i, event in enumerate(events[index:], start=index):
        changed = attrs.evolve(event, **(change if i == index else {}))
        changed = attrs.evolve(changed, prev=out[-1].hash if out else GENESIS)
        out.append(attrs.evolve(changed, hash=compute_hash(unstructure(changed), key)))
    return out


class TestKeyedHash:
    def test_keyed_hash_is_hmac_sha256(self):
        """With a key, `hash` is HMAC-SHA-256 of the same canonical JSON the plain hash covers."""
        event = seal(Draft("r", Kind.RUN_STARTED, None, {"k": 1}), seq=1, prev=GENESIS, key=KEY)
        body = {k: v for k, v in unstructure(event).items() if k != "hash"}
        expected = hmac.new(KEY, canonical(body).encode(), hashlib.sha256).hexdigest()
        assert event.hash == expected
        assert event.hash != hashlib.sha256(canonical(body).encode()).hexdigest()

    def test_key_id_names_the_key_without_revealing_it(self):
        """Two keys have two ids; an id is 16 hex characters, the same for the same key."""
        assert key_id(KEY) == key_id(KEY) != key_id(OTHER)
        assert len(key_id(KEY)) == 16 and KEY.hex()[:16] != key_id(KEY)


class TestFindBreakKeyed:
    def test_plain_then_keyed_checks_under_the_key(self):
        """Plain events before the marker, keyed from it on: no break under the key."""
        events = plain_then_keyed()
        assert find_break(events, key=KEY) is None
        assert keyed_since(events) == 4

    @given(st.lists(drafts(), max_size=6), st.integers(0, 6))
    @settings(max_examples=30)
    def test_any_keyed_chain_checks(self, ds, split):
        """Any drafts, keyed from any point on, form a valid chain under the key."""
        plain = sealed(ds[:split], key=None)
        events = sealed([marker(len(plain) + 1, KEY), *ds[split:]], key=KEY, start=plain)
        assert find_break(events, key=KEY) is None

    def test_no_key_for_a_keyed_journal_names_the_marker(self):
        """Checked without a key, a keyed chain breaks at its journal_keyed event (KEY_MISSING)."""
        brk = find_break(plain_then_keyed())
        assert (brk.seq, brk.key_problem) == (4, KEY_MISSING)
        assert "no journal key is configured" in brk.reason

    def test_wrong_key_names_the_marker_and_both_key_ids(self):
        """Checked under another key, the break is at the marker (KEY_MISMATCH) with both ids."""
        brk = find_break(plain_then_keyed(), key=OTHER)
        assert (brk.seq, brk.key_problem) == (4, KEY_MISMATCH)
        assert key_id(KEY) in brk.reason and key_id(OTHER) in brk.reason

    def test_a_key_changes_nothing_for_a_plain_chain(self):
        """A plain chain (no marker) checks the same with or without a key."""
        events = sealed([d(Kind.RUN_STARTED)] * 4, key=None)
        assert find_break(events, key=KEY) is None is find_break(events)

    @pytest.mark.parametrize("index", [4, 5, 6])
    def test_forged_keyed_event_with_a_plain_hash_is_detected(self, index):
        """An event after the marker changed, its hash and all later ones recomputed with plain
        SHA-256: the break is at the changed event."""
        forged = forge(plain_then_keyed(), index, None, data={"forged": True})
        brk = find_break(forged, key=KEY)
        assert brk is not None and brk.seq == index + 1
        assert compare(forged, forged, key=KEY).tampered

    def test_rewriting_the_plain_part_is_detected_at_the_marker(self):
        """An event before the marker changed and every later hash recomputed (plain before,
        another key after): the marker no longer checks under the key."""
        events = plain_then_keyed()
        rewritten = forge(events[:3], 1, None, data={"forged": True})
        rewritten = sealed(
            [marker(4, OTHER), *[Draft(e.run_id, e.kind, e.version, e.data) for e in events[4:]]],
            key=OTHER,
            start=rewritten,
        )
        brk = find_break(rewritten, key=KEY)
        assert (brk.seq, brk.key_problem) == (4, KEY_MISMATCH)

    def test_a_plain_event_after_the_marker_is_detected(self):
        """An event appended after the marker with a plain hash (no key) does not check."""
        events = plain_then_keyed()
        forged = sealed([d(Kind.RESTORE_STARTED, backup_id="b1")], key=None, start=events)
        brk = find_break(forged, key=KEY)
        assert brk.seq == len(forged) and brk.key_problem is None
        assert "keyed hash does not match" in brk.reason


class TestJournalWithAKey:
    def test_a_new_journal_is_keyed_from_seq_1(self, conn, jsonl):
        """The first append with a key writes journal_keyed at seq 1, then the event, keyed."""
        journal = Journal(conn, jsonl, key=KEY)
        journal.append(d(Kind.RUN_STARTED))
        table, lines = journal.table.read().events, jsonl.read().events
        assert table == lines and [e.kind for e in table] == [Kind.JOURNAL_KEYED, Kind.RUN_STARTED]
        assert table[0].data == {"since_seq": 1, "plain_events": 0, "key_id": key_id(KEY)}
        assert find_break(table, key=KEY) is None
        assert find_break(table).key_problem == KEY_MISSING
        assert journal.snapshot().consistency.consistent

    def test_a_plain_journal_is_keyed_from_the_next_event(self, conn, jsonl):
        """A journal started without a key: the first append with one marks the next seq."""
        Journal(conn, jsonl).append_many([d(Kind.RUN_STARTED), d(Kind.RUN_FINISHED)])
        keyed = Journal(conn, jsonl, key=KEY)
        keyed.continue_after(keyed.snapshot().longest)
        keyed.append(d(Kind.RUN_STARTED))
        keyed.append(d(Kind.RUN_FINISHED))
        events = keyed.snapshot().table.events
        assert [e.kind for e in events][2:] == [
            Kind.JOURNAL_KEYED,
            Kind.RUN_STARTED,
            Kind.RUN_FINISHED,
        ]
        assert events[2].data["plain_events"] == 2
        assert keyed.snapshot().consistency.consistent
        assert Journal(conn, jsonl).snapshot().consistency.tampered  # without the key

    def test_a_marker_rolled_back_is_written_again(self, conn, jsonl):
        """A marker written inside a transaction that rolls back is written again next time."""
        journal = Journal(conn, jsonl, key=KEY)
        journal.begin()
        journal.append(d(Kind.STEP_STARTED))
        journal.rollback()
        assert journal.table.read().events == ()
        journal.append(d(Kind.RUN_STARTED))
        events = journal.table.read().events
        assert [e.kind for e in events] == [Kind.JOURNAL_KEYED, Kind.RUN_STARTED]
        assert find_break(events, key=KEY) is None

    def test_a_keyed_journal_refuses_to_append_without_the_key(self, conn, jsonl):
        """Without the key, a journal that is keyed takes no event (JournalChainBroken, exit 4)."""
        Journal(conn, jsonl, key=KEY).append(d(Kind.RUN_STARTED))
        plain = Journal(conn, jsonl)
        plain.continue_after(plain.snapshot().longest)
        with pytest.raises(JournalChainBroken, match="sealed with a key from seq 1") as info:
            plain.append(d(Kind.RUN_FINISHED))
        assert info.value.exit_code == 4
        assert len(jsonl.read().events) == 2

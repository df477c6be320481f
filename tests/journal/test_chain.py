"""Tests for journal.chain: sealing drafts and locating breaks in the hash chain."""

from __future__ import annotations

import re
import uuid

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.journal.chain import GENESIS, ChainBreak, compute_hash, find_break, now, seal
from schemalog.journal.codec import unstructure
from schemalog.journal.events import Draft, Kind
from tests.journal.strategies import TS, chain, drafts, events


class TestNow:
    def test_now_is_utc_iso8601_with_microseconds(self):
        """`now()` looks like 2024-01-02T03:04:05.000006Z."""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now())


class TestSeal:
    def test_seal_places_the_draft(self):
        """A sealed event carries the draft's fields, its seq, prev, a uuid and a timestamp."""
        draft = Draft("run-9", Kind.STEP_APPLIED, 3, {"name": "x"})
        event = seal(draft, seq=7, prev="a" * 64)
        assert (event.seq, event.prev, event.run_id, event.kind, event.version, event.data) == (
            7,
            "a" * 64,
            "run-9",
            Kind.STEP_APPLIED,
            3,
            {"name": "x"},
        )
        assert uuid.UUID(event.id)
        assert event.ts.endswith("Z")

    def test_seal_uses_given_ts_and_id(self):
        """Explicit ts and id are used as given, making the event reproducible."""
        draft = Draft("r", Kind.RUN_STARTED)
        a = seal(draft, seq=1, prev=GENESIS, ts=TS, id="fixed")
        b = seal(draft, seq=1, prev=GENESIS, ts=TS, id="fixed")
        assert a == b
        assert (a.ts, a.id) == (TS, "fixed")

    def test_hash_covers_every_other_field(self):
        """`hash` is the SHA-256 of the canonical JSON of every field except itself."""
        event = seal(Draft("r", Kind.RUN_STARTED, None, {"k": "v"}), seq=1, prev=GENESIS)
        assert event.hash == compute_hash(unstructure(event))
        assert re.fullmatch(r"[0-9a-f]{64}", event.hash)

    @pytest.mark.parametrize(
        "change",
        [
            {"seq": 2},
            {"id": "other"},
            {"ts": "2000-01-01T00:00:00.000000Z"},
            {"run_id": "other"},
            {"kind": Kind.RUN_FINISHED},
            {"version": 1},
            {"data": {"k": "w"}},
            {"prev": "f" * 64},
        ],
        ids=lambda c: next(iter(c)),
    )
    def test_hash_changes_with_any_field(self, change):
        """Changing any one field of an event changes the hash it should have."""
        event = seal(Draft("r", Kind.RUN_STARTED, None, {"k": "v"}), seq=1, prev=GENESIS)
        changed = attrs.evolve(event, **change)
        assert compute_hash(unstructure(changed)) != event.hash

    def test_compute_hash_ignores_the_hash_field(self):
        """The `hash` key itself is not part of what is hashed."""
        fields = unstructure(events(1)[0])
        assert compute_hash(fields) == compute_hash({**fields, "hash": "anything"})


class TestFindBreak:
    @given(st.lists(drafts(), max_size=8))
    @settings(max_examples=40)
    def test_a_sealed_chain_has_no_break(self, ds):
        """Any sequence of drafts sealed one after another is a valid chain."""
        assert find_break(chain(ds)) is None

    def test_continuation_from_a_start(self):
        """A chain that continues an earlier one is valid from that seq and hash."""
        evs = events(5)
        assert find_break(evs[2:], start_seq=3, start_prev=evs[1].hash) is None
        assert find_break(evs[2:]) == ChainBreak(3, 0, "expected seq 1, found 3 (missing seq)")

    def test_gap_is_a_missing_seq(self):
        """A skipped seq is reported at the event after the gap."""
        evs = events(5)
        brk = find_break(evs[:2] + evs[3:])
        assert brk == ChainBreak(4, 2, "expected seq 3, found 4 (missing seq)")

    def test_repeat_is_a_duplicate_seq(self):
        """A repeated seq is reported as a duplicate."""
        evs = events(3)
        brk = find_break([*evs, evs[2]])
        assert brk == ChainBreak(3, 3, "expected seq 4, found 3 (duplicate seq)")

    def test_wrong_prev_is_reported(self):
        """An event whose prev is not the previous hash breaks the chain there."""
        evs = events(4)
        forged = seal(Draft("x", Kind.RUN_STARTED), seq=3, prev="e" * 64)
        brk = find_break([*evs[:2], forged, *evs[3:]])
        assert brk is not None
        assert (brk.seq, brk.index) == (3, 2)
        assert "prev" in brk.reason

    def test_edited_content_is_reported(self):
        """An event whose content no longer matches its hash breaks the chain there."""
        evs = events(4)
        evs[1] = attrs.evolve(evs[1], data={"i": 99})
        brk = find_break(evs)
        assert brk is not None
        assert (brk.seq, brk.index) == (2, 1)
        assert "hash does not match" in brk.reason

    @given(st.data())
    @settings(max_examples=60)
    def test_any_edited_event_is_found_at_its_seq(self, data):
        """Editing any field of any one event of a chain is found exactly at that event."""
        evs = events(6)
        i = data.draw(st.integers(0, len(evs) - 1))
        field = data.draw(st.sampled_from(["id", "ts", "run_id", "data", "version", "kind"]))
        value = {
            "id": "x",
            "ts": "t",
            "run_id": "r",
            "data": {"i": -1},
            "version": 99,
            "kind": Kind.JOURNAL_REPAIRED,
        }[field]
        evs[i] = attrs.evolve(evs[i], **{field: value})
        brk = find_break(evs)
        assert brk is not None
        assert brk.seq == i + 1

    def test_empty_is_valid(self):
        """No events is a valid (empty) chain."""
        assert find_break([]) is None

"""Tests for journal.consistency: comparing the table with the JSONL."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.journal.consistency import Consistency, compare
from schemalog.journal.events import Draft, Kind
from tests.journal.strategies import events, reseal_from

FORGED = Draft("mallory", Kind.BASELINE_SET, 9, {"forged": True})


class TestCompare:
    def test_equal_stores_are_consistent(self):
        """The same events on both sides are consistent, with every event in common."""
        evs = events(5)
        report = compare(evs, list(evs))
        assert report == Consistency(common=5)
        assert report.consistent
        assert not report.tampered
        assert report.first_break is None

    def test_two_empty_stores_are_consistent(self):
        """Two empty journals agree."""
        assert compare([], []).consistent

    @pytest.mark.parametrize("extra", [1, 3])
    def test_table_ahead(self, extra):
        """When the table holds more events, exactly those are reported as table_only."""
        evs = events(4 + extra)
        report = compare(evs, evs[:4])
        assert report.common == 4
        assert report.table_only == tuple(evs[4:])
        assert report.jsonl_only == ()
        assert not report.consistent
        assert not report.tampered

    @pytest.mark.parametrize("extra", [1, 3])
    def test_jsonl_ahead(self, extra):
        """When the JSONL holds more events, exactly those are reported as jsonl_only."""
        evs = events(4 + extra)
        report = compare(evs[:4], evs)
        assert report.common == 4
        assert report.jsonl_only == tuple(evs[4:])
        assert report.table_only == ()
        assert not report.consistent
        assert not report.tampered

    def test_empty_table_with_a_jsonl(self):
        """An empty table against a JSONL reports every JSONL event as jsonl_only."""
        evs = events(2)
        assert compare([], evs).jsonl_only == tuple(evs)

    @given(k=st.integers(1, 6), side=st.sampled_from(["table", "jsonl"]))
    @settings(max_examples=24)
    def test_changed_event_is_where_they_diverge(self, k, side):
        """An event changed at seq k (and re-chained after it) makes the stores diverge at k."""
        evs = events(6)
        forged = reseal_from(evs, k - 1, FORGED)
        table, jsonl = (forged, evs) if side == "table" else (evs, forged)
        report = compare(table, jsonl)
        assert report.diverged_at == k
        assert report.common == k - 1
        assert report.tampered
        assert not report.consistent
        assert report.first_break == k
        assert (report.table_only, report.jsonl_only) == ((), ())

    def test_divergence_hides_the_tails(self):
        """After a divergence, neither side's extra events are offered for mirroring."""
        evs = events(6)
        report = compare(reseal_from(evs, 2, FORGED), evs[:4])
        assert report.diverged_at == 3
        assert (report.table_only, report.jsonl_only) == ((), ())

    def test_misaligned_seqs_diverge_at_the_lower_one(self):
        """A store missing an event diverges at the first seq where the two differ."""
        evs = events(5)
        report = compare(evs, evs[:2] + evs[3:])
        assert report.diverged_at == 3
        assert report.jsonl_break is not None
        assert report.jsonl_break.seq == 4

    @pytest.mark.parametrize("side", ["table", "jsonl"])
    def test_chain_break_in_one_store_is_reported_with_its_seq(self, side):
        """An event whose content no longer matches its hash is a break at its seq in that store."""
        evs = events(5)
        broken = list(evs)
        broken[2] = attrs.evolve(broken[2], data={"edited": 1})
        table, jsonl = (broken, evs) if side == "table" else (evs, broken)
        report = compare(table, jsonl)
        brk = report.table_break if side == "table" else report.jsonl_break
        other = report.jsonl_break if side == "table" else report.table_break
        assert brk is not None
        assert brk.seq == 3
        assert other is None
        assert report.tampered
        assert not report.consistent
        assert report.first_break == 3

    def test_chain_break_in_both_stores(self):
        """Identical broken chains in both stores are tampered, though they agree."""
        evs = events(4)
        evs[1] = attrs.evolve(evs[1], data={})
        report = compare(evs, evs)
        assert report.diverged_at is None
        assert report.tampered
        assert report.table_break is not None
        assert report.jsonl_break is not None
        assert report.first_break == 2

    def test_first_break_is_the_lowest(self):
        """first_break is the lowest of the divergence and the breaks of either chain."""
        evs = events(6)
        broken = list(evs)
        broken[4] = attrs.evolve(broken[4], run_id="x")
        report = compare(broken, reseal_from(evs, 1, FORGED))
        assert report.diverged_at == 2
        assert report.table_break is not None
        assert report.table_break.seq == 5
        assert report.first_break == 2

    def test_content_edit_with_kept_hash_diverges(self):
        """Stores holding different events at seq k diverge at k even if the hash field agrees."""
        evs = events(4)
        edited = list(evs)
        edited[1] = attrs.evolve(edited[1], data={"edited": 1})
        report = compare(evs, edited)
        assert report.diverged_at == 2

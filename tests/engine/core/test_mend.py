"""Tests for schemalog.engine.core.mend and its place in `diagnose()`: a JSONL whose lines were
lost, zeroed or garbled (power loss) is mended from the table when the table vouches for every
damaged line, and refused, naming the line, when it cannot."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemalog.engine.core.diagnosis import (
    MIRROR_TO_JSONL,
    MIRROR_TO_TABLE,
    REPAIR_TORN_TAIL,
    REWRITE_JSONL,
    diagnose,
)
from schemalog.engine.core.mend import journal_view, mend_jsonl
from schemalog.journal.codec import encode
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalChainBroken, JournalCorrupt, JournalsDiverged
from schemalog.journal.events import Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.store import ReadResult
from tests.engine.core.test_diagnosis import (
    DEAD,
    HEALTHY,
    action_kinds,
    chain,
    ev,
    facts,
    run_end,
    run_start,
    step,
)

#: A longer healthy history (so that a 4 KiB page covers several lines): 20 migrations.
LONG: tuple[Event, ...] = chain(
    [*run_start("aaaaaaaaaaaa")]
    + [d for v in range(1, 21) for d in step("aaaaaaaaaaaa", v)]
    + run_end("aaaaaaaaaaaa")
)


def lines_of(events: tuple[Event, ...]) -> bytes:
    """The JSONL file holding `events`."""
    return b"".join((encode(e) + "\n").encode() for e in events)


def read_snapshot(tmp_path: Path, table: tuple[Event, ...], raw: bytes) -> Snapshot:
    """What `Journal.snapshot()` reads when the table holds `table` and the JSONL is `raw`."""
    path = tmp_path / "app.db.journal.jsonl"
    path.write_bytes(raw)
    jsonl = JsonlStore(path).read()
    return Snapshot(
        table=ReadResult(events=table), jsonl=jsonl, consistency=compare(table, jsonl.events)
    )


def garble(raw: bytes, start: int, size: int, *, seed: int = 0, zero: bool = False) -> bytes:
    """`raw` with `size` bytes from `start` zeroed or replaced by random bytes."""
    junk = bytes(size) if zero else random.Random(seed).randbytes(size)
    return raw[:start] + junk + raw[start + size :]


class TestMendInTheMiddle:
    def test_zero_page_is_rewritten_from_the_table(self, tmp_path):
        """A zeroed 4 KiB page inside lines the table holds: rewrite the JSONL with them."""
        raw = garble(lines_of(LONG), 4096, 4096, zero=True)
        plan = diagnose(read_snapshot(tmp_path, LONG, raw), facts(20))
        assert action_kinds(plan) == [REWRITE_JSONL]
        action = plan.actions[0]
        assert action.events == LONG
        assert action.data["what"] == "damaged_lines"
        first, last = action.data["restored_seqs"][0]
        assert 1 < first <= last < len(LONG)
        assert "rewrite the JSONL" in action.detail and "not JSON" in action.detail
        assert plan.snapshot is not None and plan.snapshot.consistency.consistent

    def test_garbage_line_with_nothing_missing_is_rewritten(self, tmp_path):
        """An extra garbage line between two events: rewritten without it, no seq restored."""
        raw = lines_of(HEALTHY[:3]) + b"#!garbage\n" + lines_of(HEALTHY[3:])
        plan = diagnose(read_snapshot(tmp_path, HEALTHY, raw), facts(2))
        assert action_kinds(plan) == [REWRITE_JSONL]
        assert plan.actions[0].events == HEALTHY
        assert plan.actions[0].data["lines"] == ["4"]
        assert plan.actions[0].data["restored_seqs"] == []

    def test_middle_and_tail_damage_rewrite_then_mirror(self, tmp_path):
        """Damage inside and after the events, the table ahead: rewrite, then mirror the rest."""
        raw = garble(lines_of(LONG[:-2]), 2000, 300, seed=3) + b"\x00\x00\x00\n"
        plan = diagnose(read_snapshot(tmp_path, LONG, raw), facts(20))
        assert action_kinds(plan) == [REWRITE_JSONL, MIRROR_TO_JSONL]
        assert plan.actions[0].events + plan.actions[1].events == LONG

    def test_damage_before_a_plausible_jsonl_tail_is_mended_and_mirrored(self, tmp_path):
        """The table lacks the run's last JSONL-first events, the damage is before them: both."""
        raw = garble(lines_of(LONG), 900, 200, seed=5)
        plan = diagnose(read_snapshot(tmp_path, LONG[:-2], raw), facts(20))
        assert action_kinds(plan) == [REWRITE_JSONL, MIRROR_TO_TABLE]
        assert plan.actions[0].events == LONG
        assert plan.actions[1].events == LONG[-2:]


class TestMendAtTheEnd:
    def test_random_tail_is_cut_and_the_table_mirrored_back(self, tmp_path):
        """Random bytes over the unsynced end: cut them (a torn tail), mirror what the table has."""
        raw = lines_of(LONG)
        start = len(lines_of(LONG[:-5])) + 7
        damaged = garble(raw, start, len(raw) - start, seed=1)
        plan = diagnose(read_snapshot(tmp_path, LONG, damaged), facts(20))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL, MIRROR_TO_JSONL]
        torn = plan.actions[0].torn
        assert torn is not None and damaged[torn.offset :] == torn.data
        assert torn.offset == len(lines_of(LONG[:-5]))
        assert plan.actions[0].data["what"] == "damaged_tail"
        assert plan.actions[1].events == LONG[-5:]

    def test_lost_jsonl_only_tail_is_cut(self, tmp_path):
        """Garbage where JSONL-first events of a dead run stood (never in the table): cut it."""
        table = chain([*run_start(DEAD)], after=HEALTHY)
        raw = lines_of(table) + random.Random(2).randbytes(700).replace(b"{", b"(") + b"\n"
        plan = diagnose(read_snapshot(tmp_path, table, raw), facts(2))
        assert action_kinds(plan)[0] == REPAIR_TORN_TAIL
        assert plan.actions[0].torn.offset == len(lines_of(table))

    def test_tail_damage_of_a_lost_table_rebuilds_it(self, tmp_path):
        """No table at all, the JSONL's end garbled: cut the end, mirror the rest to the table."""
        raw = lines_of(HEALTHY) + b"\x00" * 300 + b"\n\x00\x00"
        plan = diagnose(read_snapshot(tmp_path, (), raw), facts(2))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL, MIRROR_TO_TABLE]
        assert plan.actions[0].torn.data == b"\x00" * 300 + b"\n\x00\x00"


class TestRefused:
    def test_damage_before_events_the_table_lacks_is_refused_naming_the_line(self, tmp_path):
        """Damage followed by events the table does not hold: JournalCorrupt naming the line."""
        raw = lines_of(LONG[:10]) + b"\x00" * 50 + b"\n" + lines_of(LONG[12:])
        plan = diagnose(read_snapshot(tmp_path, LONG[:10], raw), facts(20))
        assert isinstance(plan.refusal, JournalCorrupt)
        assert "JSONL line 11 is not JSON" in plan.refusal.what
        assert "ends at seq 10" in plan.refusal.what
        assert plan.refusal.exit_code == 4 and plan.actions == ()

    def test_a_lost_run_tail_after_damage_is_cut_not_refused(self, tmp_path):
        """Damage over a dead run's JSONL-only records, one intact after it: cut them all."""
        table = chain([*run_start(DEAD)], after=HEALTHY)
        more = chain([*run_end(DEAD)], after=table)
        raw = lines_of(table) + b"\x00" * 80 + b"\n" + lines_of(more[len(table) + 1 :])
        plan = diagnose(read_snapshot(tmp_path, table, raw), facts(2))
        assert action_kinds(plan)[0] == REWRITE_JSONL
        assert plan.actions[0].events == table
        assert plan.actions[0].data["dropped_seqs"] == [len(table) + 2]
        assert "cut with them" in plan.actions[0].detail

    def test_empty_table_cannot_vouch_for_the_middle(self, tmp_path):
        """No table, damage between JSONL events: refused (nothing holds what stood there)."""
        raw = lines_of(HEALTHY[:2]) + b"\xff\n" + lines_of(HEALTHY[3:])
        plan = diagnose(read_snapshot(tmp_path, (), raw), facts(2))
        assert isinstance(plan.refusal, JournalCorrupt) and "holds no event" in plan.refusal.what

    def test_a_surviving_line_that_differs_is_divergence(self, tmp_path):
        """Damage the table covers, but another line differs from the table: JournalsDiverged."""
        other = chain([ev(Kind.DRIFT_DETECTED, run="eeeeeeeeeeee", allowed=True)], after=LONG[:29])
        raw = garble(lines_of(LONG[:29]), 500, 100, seed=9) + lines_of(other[29:])
        plan = diagnose(read_snapshot(tmp_path, LONG, raw), facts(20))
        assert isinstance(plan.refusal, JournalsDiverged) and "seq 30" in plan.refusal.what

    def test_a_removed_line_is_not_mended(self, tmp_path):
        """A line deleted (no damage in its place) beside real damage: the chain break stays."""
        events = list(LONG)
        del events[20]
        raw = lines_of(tuple(events[:5])) + b"\x00\n" + lines_of(tuple(events[6:]))
        plan = diagnose(read_snapshot(tmp_path, LONG, raw), facts(20))
        assert isinstance(plan.refusal, JournalsDiverged | JournalChainBroken)
        assert "seq 21" in plan.refusal.what and plan.actions == ()

    def test_a_broken_table_vouches_for_nothing(self, tmp_path):
        """The table's own chain is broken: its tampering refusal, not a repair."""
        edited = attrs.evolve(LONG[3], data={**LONG[3].data, "name": "x"})
        table = (*LONG[:3], edited, *LONG[4:])
        raw = garble(lines_of(LONG), 3000, 100, zero=True)
        plan = diagnose(read_snapshot(tmp_path, table, raw), facts(20))
        assert isinstance(plan.refusal, JournalsDiverged | JournalChainBroken)
        assert "seq 4" in plan.refusal.what and plan.actions == ()
        assert mend_jsonl(read_snapshot(tmp_path, table, raw)) is None


class TestJournalView:
    def test_undamaged_snapshot_is_returned_as_is(self, tmp_path):
        """No damage: the view is the snapshot itself, no refusal."""
        snap = read_snapshot(tmp_path, HEALTHY, lines_of(HEALTHY))
        assert mend_jsonl(snap) is None
        assert journal_view(snap) == (snap, None)

    def test_view_of_a_vouched_damage_is_the_table(self, tmp_path):
        """A zeroed page the table covers: the view's JSONL holds every event, consistent."""
        snap = read_snapshot(tmp_path, LONG, garble(lines_of(LONG), 100, 4096, zero=True))
        view, refusal = journal_view(snap)
        assert refusal is None and view.jsonl.events == LONG and view.consistency.consistent


_hyp = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=60
)


def held_after(plan, snap: Snapshot) -> tuple[Event, ...]:
    """What the JSONL holds once the plan's JSONL actions are applied to what was read."""
    held = snap.jsonl.events
    for action in plan.actions:
        if action.kind == REWRITE_JSONL:
            held = action.events
        elif action.kind == MIRROR_TO_JSONL:
            held = held + action.events
    return held


class TestPowerLossProperty:
    @given(
        pages=st.lists(st.integers(0, 7), min_size=1, max_size=3, unique=True),
        kinds=st.lists(st.sampled_from(["zero", "random", "lost"]), min_size=3, max_size=3),
        seed=st.integers(0, 2**16),
    )
    @_hyp
    def test_any_damaged_pages_the_table_holds_are_mended_to_the_table(
        self, tmp_path, pages, kinds, seed
    ):
        """Any 1 KiB pages zeroed, garbled or cut off, in a JSONL whose events the table all
        holds: the plan mends it (no refusal), and afterwards the JSONL holds the table."""
        raw = bytearray(lines_of(LONG))
        end = len(raw)
        for page, kind in zip(sorted(pages), kinds, strict=False):
            start = page * 1024
            if start >= len(raw):
                continue
            size = min(1024, len(raw) - start)
            if kind == "lost":
                end = min(end, start)
            else:
                raw[start : start + size] = garble(
                    bytes(raw), start, size, seed=seed + page, zero=kind == "zero"
                )[start : start + size]
        snap = read_snapshot(tmp_path, LONG, bytes(raw[:end]))
        plan = diagnose(snap, facts(20))
        assert plan.refusal is None, plan.refusal
        assert set(action_kinds(plan)) <= {REWRITE_JSONL, REPAIR_TORN_TAIL, MIRROR_TO_JSONL}
        assert held_after(plan, snap) == LONG

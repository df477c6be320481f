"""Tests for checkpoints: the payload (journal.replay), where they are found (the stores),
reading from them (journal.recent), the writing rule (journal.checkpoint)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schemalog.journal import checkpoint as cp_module
from schemalog.journal import jsonl as jsonl_module
from schemalog.journal import table as table_module
from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.checkpoint import (
    CHECKPOINT_INTERVAL,
    checkpoint_if_due,
    mismatched_checkpoints,
)
from schemalog.journal.codec import encode
from schemalog.journal.errors import JournalCorrupt
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.recent import TailMemo, read_from_checkpoint
from schemalog.journal.replay import checkpoint_payload, replay
from schemalog.journal.table import TableStore
from tests.journal.strategies import chain, d, replay_draft

K = Kind
_RUNS = ("r1", "r2", "r3")


def quiet_suffix() -> list[Draft]:
    """Drafts that close whatever the random drafts of `replay_draft` may have left open."""
    closing = [d(K.STEP_FAILED, v, by=r, error="x") for r in _RUNS for v in range(7)]
    closing += [d(K.RUN_FINISHED, by=r, outcome="failed") for r in _RUNS]
    closing += [d(K.LOCK_RELEASED), d(K.RESTORE_FAILED, backup_id="b1")]
    return closing


def with_checkpoint(before: list[Draft], after: list[Draft]) -> tuple[list[Event], list[Event]]:
    """(every event, the events from the checkpoint on): `before`, a checkpoint of the state
    they give, then `after`."""
    head = chain(before)
    payload = checkpoint_payload(head)
    assert payload is not None
    prev = head[-1].hash if head else GENESIS
    cp = seal(Draft("cp", K.CHECKPOINT, None, payload), seq=len(head) + 1, prev=prev)
    tail = chain(after, start_seq=cp.seq + 1, prev=cp.hash)
    return [*head, cp, *tail], [cp, *tail]


def current(state) -> tuple:
    """The parts of a state a command acts on (everything but the history lists)."""
    return (
        state.seq,
        state.head_hash,
        state.version,
        state.fingerprint,
        state.applied,
        state.lock,
        state.backups,
        state.pending_restore,
        state.open_attempts,
        state.open_runs,
        state.last_run,
    )


def cycle(run: str, version: int, backup: str) -> list[Draft]:
    """A run that takes backup `backup`, then applies `version`."""
    return [
        d(K.RUN_STARTED, by=run, command="up"),
        d(K.LOCK_ACQUIRED, by=run, pid=1, host="h", command="up"),
        d(
            K.BACKUP_TAKEN,
            by=run,
            id=backup,
            data={"version": version - 1},
            created_at=f"t-{backup}",
        ),
        d(K.STEP_STARTED, version, by=run, direction="up", name=f"m{version}"),
        d(K.STEP_APPLIED, version, by=run, name=f"m{version}", checksum=f"{run}-{version}"),
        d(K.RUN_FINISHED, by=run, outcome="succeeded"),
        d(K.LOCK_RELEASED, by=run),
    ]


class TestPayload:
    @given(
        before=st.lists(replay_draft(), max_size=30),
        after=st.lists(replay_draft(), max_size=30),
    )
    @settings(max_examples=150, deadline=None)
    def test_state_from_a_checkpoint_equals_the_replay_from_the_first_event(self, before, after):
        """Replaying from a checkpoint gives the same current state as replaying every event."""
        # The suffix closes everything but a step started twice by one run (the first start
        # stays open: then no checkpoint can be written).
        assume(checkpoint_payload(chain([*before, *quiet_suffix()])) is not None)
        everything, from_cp = with_checkpoint([*before, *quiet_suffix()], after)
        assert current(replay(from_cp)) == current(replay(everything))

    def test_a_restore_after_the_checkpoint_brings_back_the_record_of_its_backup(self):
        """The records in force when a kept backup was taken survive the checkpoint."""
        before = [
            *cycle("a", 1, "b1"),
            d(K.BACKUP_TAKEN, by="x", id="bx", data={"version": 1}, created_at="t-bx"),
            d(K.STEP_REVERTED, 1, by="y", to_version=0),
            *cycle("b", 1, "b2"),
        ]
        after = [
            d(K.RESTORE_STARTED, by="c", backup_id="bx"),
            d(K.BACKUP_RESTORED, by="c", backup_id="bx", data={"version": 1}),
        ]
        everything, from_cp = with_checkpoint(before, after)
        state = replay(from_cp)
        assert state.applied_by_version[1].checksum == "a-1"  # in force when bx was taken
        assert current(state) == current(replay(everything))

    def test_removed_backups_and_superseded_records_are_not_kept(self):
        """The payload holds the records kept backups need, not the whole history."""
        drafts = []
        for i in range(20):
            drafts += [*cycle(f"r{i}", 1, f"b{i}"), d(K.STEP_REVERTED, 1, by=f"r{i}")]
            if i:
                drafts.append(d(K.BACKUP_REMOVED, by=f"r{i}", id=f"b{i - 1}"))
        payload = checkpoint_payload(chain(drafts))
        assert payload is not None
        assert [b["id"] for b in payload["backups"]] == ["b19"]
        assert len(payload["records"]) <= 2

    @pytest.mark.parametrize(
        "last",
        [
            d(K.STEP_STARTED, 1, direction="up"),
            d(K.RUN_STARTED, command="up"),
            d(K.LOCK_ACQUIRED, pid=1),
            d(K.RESTORE_STARTED, backup_id="b1"),
        ],
    )
    def test_no_payload_while_something_is_open(self, last):
        """No checkpoint is written while an attempt, a run, the lock or a restore is open."""
        assert checkpoint_payload(chain([last])) is None

    def test_an_unreadable_payload_is_corrupt(self):
        """A checkpoint whose payload is not one is JournalCorrupt, naming its seq."""
        head = chain([d(K.RECOVERY_STARTED)])
        bad = seal(Draft("x", K.CHECKPOINT, None, {"format": 99}), seq=2, prev=head[-1].hash)
        with pytest.raises(JournalCorrupt, match="checkpoint at seq 2"):
            replay([bad])

    def test_until_before_the_checkpoint_is_refused(self):
        """The past before a checkpoint cannot come from a read that starts at it."""
        _, from_cp = with_checkpoint([*cycle("a", 1, "b1")], [])
        with pytest.raises(ValueError, match="before the checkpoint"):
            replay(from_cp, until=2)

    def test_a_checkpoint_changes_nothing_in_a_replay_from_the_first_event(self):
        """Inside a full replay a checkpoint only moves the position."""
        everything, _ = with_checkpoint(cycle("a", 1, "b1"), [])
        assert replay(everything).applied == replay(everything[:-1]).applied


class TestMismatches:
    def test_true_checkpoints_match(self):
        """Checkpoints written by the rule match the events before them."""
        everything, _ = with_checkpoint(cycle("a", 1, "b1"), cycle("b", 2, "b2"))
        assert mismatched_checkpoints(everything) == []

    def test_a_forged_state_is_found(self):
        """A checkpoint whose state differs from the replay is named by its seq."""
        head = chain(cycle("a", 1, "b1"))
        payload = checkpoint_payload(head)
        assert payload is not None
        forged = seal(
            Draft("x", K.CHECKPOINT, None, {**payload, "version": 7}),
            seq=len(head) + 1,
            prev=head[-1].hash,
        )
        assert mismatched_checkpoints([*head, forged]) == [
            (forged.seq, "its state is not the replay of the events before it")
        ]

    def test_a_checkpoint_while_a_run_is_open_is_found(self):
        """A checkpoint written while a run was open is named."""
        head = chain([d(K.RUN_STARTED)])
        cp = seal(Draft("x", K.CHECKPOINT, None, {}), seq=2, prev=head[-1].hash)
        assert mismatched_checkpoints([*head, cp])[0][0] == 2


# -- the stores ----------------------------------------------------------------------


def filled(conn: sqlite3.Connection, jsonl: JsonlStore, cycles: int, *, every: int) -> Journal:
    """A journal of `cycles` runs with a checkpoint after every `every` runs."""
    journal = Journal(conn, jsonl)
    for i in range(cycles):
        for draft in cycle(f"r{i}", i + 1, f"b{i}"):
            journal.append(draft)
        if (i + 1) % every == 0:
            payload = checkpoint_payload(journal.snapshot().longest)
            journal.append(Draft(f"r{i}", K.CHECKPOINT, None, payload))
    return journal


class TestTableStore:
    def test_the_last_checkpoint_is_found(self, conn, jsonl):
        """`last_checkpoint` returns the checkpoint with the highest seq."""
        journal = filled(conn, jsonl, 6, every=2)
        events = journal.snapshot().table.events
        last = [e for e in events if e.kind is K.CHECKPOINT][-1]
        assert journal.table.last_checkpoint() == last

    def test_the_index_serves_the_lookup(self, conn, jsonl):
        """The lookup of the last checkpoint goes through the partial index, not a scan."""
        filled(conn, jsonl, 2, every=1)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM schemalog_journal WHERE kind = 'checkpoint' "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchall()
        assert "schemalog_journal_checkpoints" in str(plan)

    def test_layout_1_is_upgraded_step_by_step(self, conn):
        """A layout-1 journal gets the index and layout 2 from the next writer."""
        for stmt in table_module._CREATE[:4]:
            conn.execute(stmt)
        conn.execute("INSERT INTO schemalog_meta VALUES ('journal_layout', '1')")
        store = TableStore(conn)
        assert store.layout() == 1
        assert store.last_checkpoint() is None  # no index yet: nothing is looked up
        store.ensure()
        assert store.layout() == 2
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "schemalog_journal_checkpoints" in names

    def test_read_from_starts_at_that_seq(self, conn, jsonl):
        """`read_from(seq)` returns the events from `seq` on."""
        journal = filled(conn, jsonl, 3, every=5)
        assert [e.seq for e in journal.table.read_from(19).events] == [19, 20, 21]


class TestJsonlStore:
    def test_the_last_checkpoint_line_and_its_offset(self, conn, jsonl):
        """The last checkpoint is found from the end; its offset is where its line starts."""
        journal = filled(conn, jsonl, 6, every=4)
        offset, end, event = jsonl.last_checkpoint()
        assert event == journal.table.last_checkpoint()
        assert jsonl.read_from(offset).events[0] == event
        assert jsonl.read_from(end).events[0].seq == event.seq + 1

    def test_a_checkpoint_line_longer_than_a_block(self, conn, jsonl, monkeypatch):
        """The line's start is found however far back it begins."""
        monkeypatch.setattr(jsonl_module, "_BLOCK", 64)
        journal = filled(conn, jsonl, 4, every=4)
        offset, end, event = jsonl.last_checkpoint()
        assert event == journal.table.last_checkpoint()
        assert offset == jsonl.path.read_bytes().rfind(b"\n", 0, -2) + 1
        assert end == jsonl.path.stat().st_size

    def test_a_mark_inside_a_payload_is_not_a_checkpoint(self, jsonl):
        """An event whose data looks like a checkpoint's envelope is not taken for one."""
        trap = {"a": {"id": "x", "kind": "checkpoint", "prev": "0" * 64, "run_id": "r"}}
        jsonl.append(chain([d(K.RECOVERY_STARTED, data=trap)]))
        assert b'","kind":"checkpoint","prev":"' in jsonl.path.read_bytes()
        assert jsonl.last_checkpoint() is None

    def test_a_torn_checkpoint_line_is_skipped(self, conn, jsonl):
        """A checkpoint cut short by a crash is not used; the one before it is."""
        journal = filled(conn, jsonl, 4, every=2)
        first = journal.table.last_checkpoint()
        torn = seal(Draft("x", K.CHECKPOINT, None, {}), seq=99, prev="0" * 64)
        with jsonl.path.open("ab") as fh:
            fh.write(encode(torn).encode()[:-3])
        assert jsonl.last_checkpoint()[2] == first

    def test_read_from_keeps_the_torn_tail_offset(self, jsonl):
        """Offsets of a torn tail read from the middle are offsets in the whole file."""
        jsonl.append(chain([d(K.RECOVERY_STARTED)] * 3))
        with jsonl.path.open("ab") as fh:
            fh.write(b'{"half')
        whole, part = jsonl.read(), jsonl.read_from(jsonl.path.read_bytes().index(b"\n") + 1)
        assert part.torn == whole.torn
        assert part.events == whole.events[1:]


class TestRecent:
    def test_reads_from_the_shared_checkpoint(self, conn, jsonl):
        """`recent()` starts both stores at the last checkpoint and counts what it skipped."""
        journal = filled(conn, jsonl, 10, every=3)
        full, snap = journal.snapshot(), journal.recent()
        assert snap.base == journal.table.last_checkpoint()
        assert snap.consistency.consistent
        assert snap.longest[-1] == full.longest[-1]
        assert (snap.table_count, snap.jsonl_count) == (len(full.table.events),) * 2
        assert journal.checkpoint_seq == snap.base.seq
        assert current(replay(snap.longest)) == current(replay(full.longest))

    def test_only_the_events_after_the_checkpoint_are_decoded(self, conn, jsonl, monkeypatch):
        """A read from a checkpoint decodes a bounded number of rows and lines."""
        journal = filled(conn, jsonl, 40, every=39)
        decoded = []
        real_row, real_line = table_module._decode_row, jsonl_module.decode
        monkeypatch.setattr(table_module, "_decode_row", lambda r: decoded.append(r) or real_row(r))
        monkeypatch.setattr(
            jsonl_module, "decode", lambda t, **k: decoded.append(t) or real_line(t, **k)
        )
        snap = journal.recent()
        assert len(snap.longest) == 8  # the checkpoint and one run
        assert len(decoded) <= 2 * 7 + 1  # the checkpoint itself once, from the table

    def test_a_store_without_the_checkpoint_means_a_whole_read(self, conn, jsonl):
        """When the table lacks the JSONL's last checkpoint, both are read whole."""
        journal = filled(conn, jsonl, 3, every=2)
        payload = checkpoint_payload(journal.snapshot().longest)
        journal.jsonl.append(
            [seal(Draft("x", K.CHECKPOINT, None, payload), seq=23, prev=journal.head_hash)]
        )
        snap = journal.recent()
        assert snap.base is None
        assert [e.seq for e in snap.consistency.jsonl_only] == [23]

    def test_an_edited_checkpoint_is_not_trusted(self, tmp_path, conn, jsonl):
        """A checkpoint whose hash does not cover its content sends the read back to genesis,
        where the break is found."""
        journal = filled(conn, jsonl, 3, every=3)
        lines = jsonl.path.read_text().splitlines(keepends=True)
        lines[-1] = lines[-1].replace('"checksum":"r0-1"', '"checksum":"XX-1"')
        jsonl.path.write_text("".join(lines))
        conn.execute("DROP TRIGGER schemalog_journal_no_update")
        conn.execute(
            "UPDATE schemalog_journal SET data = replace(data, 'r0-1', 'XX-1') "
            "WHERE kind = 'checkpoint'"
        )
        assert read_from_checkpoint(journal.table, journal.jsonl) is None
        assert journal.recent().consistency.tampered

    def test_the_memo_answers_while_nothing_changed(self, conn, jsonl, monkeypatch):
        """A second read with the same memo reads no event; an append makes it read again."""
        filled(conn, jsonl, 3, every=2)
        memo = TailMemo()
        journal = Journal(conn, jsonl, memo=memo)
        first = journal.recent()
        monkeypatch.setattr(table_module.TableStore, "read_from", _refuse)
        assert journal.recent() is first
        assert memo.state(first) is memo.state(first)
        journal.continue_after(first.longest)
        journal.append(d(K.RECOVERY_STARTED))
        monkeypatch.undo()
        again = journal.recent()
        assert again is not first
        assert again.longest[-1].kind is K.RECOVERY_STARTED

    def test_the_memo_keeps_no_unhealthy_snapshot(self, conn, jsonl):
        """A snapshot whose stores disagree is not remembered."""
        journal = filled(conn, jsonl, 1, every=5)
        journal.jsonl.append(chain([d(K.RECOVERY_STARTED)], start_seq=8, prev=journal.head_hash))
        memo = TailMemo()
        Journal(conn, jsonl, memo=memo).recent()
        assert memo.snapshot is None


def _refuse(*_args, **_kwargs):
    raise AssertionError("read although nothing changed")


class TestCheckpointIfDue:
    def test_written_after_the_interval(self, conn, jsonl, monkeypatch):
        """At the end of a run past the interval, one checkpoint of the state is appended."""
        monkeypatch.setattr(cp_module, "CHECKPOINT_INTERVAL", 10)
        journal = Journal(conn, jsonl)
        for draft in cycle("a", 1, "b1"):
            journal.append(draft)
        assert checkpoint_if_due(journal, "a") is None  # 7 events: not due
        for draft in cycle("b", 2, "b2"):
            journal.append(draft)
        written = checkpoint_if_due(journal, "b")
        assert written is not None and written.seq == 15
        assert written.data == checkpoint_payload(journal.snapshot().longest[:-1])
        assert journal.recent().base == written
        assert checkpoint_if_due(journal, "b") is None  # just written

    def test_not_written_while_something_is_open(self, conn, jsonl, monkeypatch):
        """A run still open (its events end without run_finished) gets no checkpoint."""
        monkeypatch.setattr(cp_module, "CHECKPOINT_INTERVAL", 1)
        journal = Journal(conn, jsonl)
        journal.append(d(K.RUN_STARTED))
        assert checkpoint_if_due(journal, "r1") is None

    def test_not_written_when_the_stores_disagree(self, conn, jsonl, monkeypatch):
        """A journal whose table lags the JSONL gets no checkpoint."""
        monkeypatch.setattr(cp_module, "CHECKPOINT_INTERVAL", 1)
        journal = Journal(conn, jsonl)
        journal.append(d(K.RECOVERY_STARTED))
        extra = chain([d(K.RECOVERY_FINISHED)], start_seq=2, prev=journal.head_hash)
        journal.jsonl.append(extra)
        journal.continue_after(extra)
        assert checkpoint_if_due(journal, "r1") is None

    def test_a_failing_store_does_not_fail_the_caller(self, conn, jsonl, monkeypatch):
        """A JSONL that cannot take the checkpoint leaves the journal as it was."""
        monkeypatch.setattr(cp_module, "CHECKPOINT_INTERVAL", 1)
        journal = Journal(conn, jsonl)
        journal.append(d(K.RECOVERY_STARTED))

        def full(*_a, **_k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(jsonl_module.os, "write", full)
        assert checkpoint_if_due(journal, "r1") is None
        assert journal.head_seq == 1

    def test_the_interval_is_a_few_hundred_events(self):
        """The rule's interval bounds a read to a few hundred events."""
        assert 64 <= CHECKPOINT_INTERVAL <= 1024

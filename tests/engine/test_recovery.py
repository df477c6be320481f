"""Tests for schemalog.engine.shell.recovery: the pure decision `diagnose()` over constructed journals and
database facts, then `Migrator.recover()` end to end on real files (a deleted, torn or
diverging JSONL, a missing journal table, a damaged database, a healthy one)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import pytest

from schemalog.engine.base.errors import DatabaseCorrupt, IrreconcilableState, NeedsHuman
from schemalog.engine.migrator import Migrator
from schemalog.engine.shell.recovery import (
    CLOSE_ATTEMPT,
    CLOSE_RUN,
    MIRROR_TO_JSONL,
    MIRROR_TO_TABLE,
    REDO_RESTORE,
    RELEASE_LOCK,
    REMOVE_PARTIAL_BACKUP,
    REPAIR_TORN_TAIL,
    RESTORE_RUN_BACKUP,
    DatabaseFacts,
    RecoveryPlan,
    diagnose,
)
from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.codec import encode
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalChainBroken, JournalsDiverged
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.store import ReadResult, TornTail
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    connect,
    execute,
    file_digest,
    jsonl_events,
    make_migrator,
    of_kind,
    table_events,
    write_migrations,
)
from tests.engine.test_crash import KILLED, World, check_invariants, run_of_pid

DEAD = "deadbeef0001"  # a run that was killed
DONE = "f00d00000001"  # a run that finished
ME = "c0ffee000001"  # the run doing the recovery


# --- building journals and facts ------------------------------------------------------------


def chain(drafts: list[Draft], *, after: tuple[Event, ...] = ()) -> tuple[Event, ...]:
    """Seal `drafts` into a valid hash chain continuing `after`; returns `after` + the new ones."""
    events = list(after)
    for i, draft in enumerate(drafts):
        seq = len(events) + 1
        prev = events[-1].hash if events else GENESIS
        events.append(
            seal(draft, seq=seq, prev=prev, ts=f"2026-01-01T00:00:{seq % 60:02d}.{i:06d}Z")
        )
    return tuple(events)


def ev(kind: Kind, version: int | None = None, /, run: str = DONE, **data: Any) -> Draft:
    """A draft of `kind` by `run`."""
    return Draft(run, kind, version, data)


def backup_data(backup_id: str, version: int, *, verified: bool = True) -> dict[str, Any]:
    """The payload of a `backup_taken` event."""
    return {
        "id": backup_id,
        "path": f"/backups/{backup_id}.sqlite",
        "version": version,
        "created_at": f"2026-01-01T00:00:{version:02d}.000000Z",
        "size": 4096,
        "sha256": "0" * 64,
        "verified": verified,
        "compression": "none",
    }


def run_start(run: str, backup: tuple[str, int] | None = None, command: str = "up") -> list[Draft]:
    """`run_started`, `lock_acquired` and (optionally) the run's `backup_taken`."""
    drafts = [
        ev(Kind.RUN_STARTED, run=run, command=command, pid=4242, host="h"),
        ev(Kind.LOCK_ACQUIRED, run=run, pid=4242, host="h", command=command),
    ]
    if backup is not None:
        drafts.append(ev(Kind.BACKUP_TAKEN, backup[1], run=run, **backup_data(*backup)))
    return drafts


def step(run: str, version: int, *, transactional: bool = True, applied: bool = True):
    """`step_started` (and `step_applied` when `applied`) of migration `version`."""
    drafts = [
        ev(
            Kind.STEP_STARTED,
            version,
            run=run,
            direction="up",
            name=f"m{version}",
            checksum="c",
            transactional=transactional,
            foreign_keys=True,
        )
    ]
    if applied:
        drafts.append(
            ev(
                Kind.STEP_APPLIED,
                version,
                run=run,
                direction="up",
                name=f"m{version}",
                checksum="c",
                fingerprint_before=f"fp{version - 1}",
                fingerprint_after=f"fp{version}",
            )
        )
    return drafts


def run_end(run: str) -> list[Draft]:
    """`run_finished` and `lock_released`."""
    return [
        ev(Kind.RUN_FINISHED, run=run, outcome="succeeded", error=None),
        ev(Kind.LOCK_RELEASED, run=run, reason="finished"),
    ]


# A healthy history: run DONE took backup v0 and applied migrations 1 and 2.
HEALTHY: tuple[Event, ...] = chain(
    [*run_start(DONE, ("v0000-a", 0)), *step(DONE, 1), *step(DONE, 2), *run_end(DONE)]
)


def snapshot(
    table: tuple[Event, ...],
    jsonl: tuple[Event, ...] | None = None,
    *,
    torn: TornTail | None = None,
    table_exists: bool = True,
    jsonl_exists: bool = True,
) -> Snapshot:
    """What `Journal.snapshot()` would read: both stores (the JSONL defaults to the table)."""
    jsonl = table if jsonl is None else jsonl
    return Snapshot(
        table=ReadResult(events=table, exists=table_exists),
        jsonl=ReadResult(events=jsonl, torn=torn, exists=jsonl_exists),
        consistency=compare(table, jsonl),
    )


def facts(user_version: int, *, integrity_ok: bool | None = True) -> DatabaseFacts:
    """What the database says."""
    return DatabaseFacts(user_version=user_version, fingerprint="fp", integrity_ok=integrity_ok)


def action_kinds(plan: RecoveryPlan) -> list[str]:
    """The kinds of the plan's actions, in order."""
    return [a.kind for a in plan.actions]


# --- diagnose(): pure decisions -------------------------------------------------------------


class TestDiagnoseHealthy:
    def test_healthy_gives_an_empty_plan(self):
        """Agreeing journals and user_version equal to the replayed version: nothing to do."""
        plan = diagnose(snapshot(HEALTHY), facts(2))
        assert plan.actions == () and plan.refusal is None and not plan.needed
        assert plan.state is not None and plan.state.version == 2

    def test_fresh_database_gives_an_empty_plan(self):
        """No journal at all and user_version 0: nothing to do."""
        plan = diagnose(snapshot((), table_exists=False, jsonl_exists=False), facts(0))
        assert not plan.needed

    def test_unchecked_integrity_is_not_damage(self):
        """integrity_ok None (not checked) never triggers a restore or a refusal."""
        assert not diagnose(snapshot(HEALTHY), facts(2, integrity_ok=None)).needed

    def test_is_pure(self):
        """The same inputs give the same plan, and the inputs are not changed."""
        snap, f = snapshot(HEALTHY[:-2]), facts(2)
        copy = attrs.evolve(snap)
        assert diagnose(snap, f) == diagnose(snap, f)
        assert snap == copy


class TestDiagnoseJournals:
    def test_torn_tail_is_repaired(self):
        """Bytes after the JSONL's last newline: cut them (saved aside by recover)."""
        torn = TornTail(offset=1234, data=b'{"seq":9,"id":"')
        plan = diagnose(snapshot(HEALTHY, torn=torn), facts(2))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL]
        assert plan.actions[0].torn == torn

    def test_table_ahead_is_mirrored_to_the_jsonl(self):
        """Committed events missing from the JSONL (crash after COMMIT) are copied to it."""
        plan = diagnose(snapshot(HEALTHY, HEALTHY[:-3]), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_JSONL]
        assert plan.actions[0].events == HEALTHY[-3:]

    def test_jsonl_ahead_is_mirrored_to_the_table(self):
        """Events written to the JSONL first (outside a transaction) are inserted in the table."""
        plan = diagnose(snapshot(HEALTHY[:-2], HEALTHY), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_TABLE]
        assert plan.actions[0].events == HEALTHY[-2:]

    def test_missing_jsonl_is_rebuilt_from_the_table(self):
        """A deleted JSONL: every event of the table is written to a new one."""
        plan = diagnose(snapshot(HEALTHY, (), jsonl_exists=False), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_JSONL]
        assert plan.actions[0].events == HEALTHY

    def test_missing_table_is_rebuilt_from_the_jsonl(self):
        """A database without the journal table: every JSONL event is inserted."""
        plan = diagnose(snapshot((), HEALTHY, table_exists=False), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_TABLE]
        assert plan.actions[0].events == HEALTHY

    def test_torn_tail_and_table_ahead_together(self):
        """A JSONL append cut short after COMMIT: cut the tail, then mirror the table."""
        torn = TornTail(offset=99, data=b'{"se')
        plan = diagnose(snapshot(HEALTHY, HEALTHY[:-1], torn=torn), facts(2))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL, MIRROR_TO_JSONL]

    @pytest.mark.parametrize("k", [1, 4, len(HEALTHY)])
    def test_diverged_at_k_is_refused_naming_k(self, k: int):
        """Two valid chains that differ from seq k on: refuse (JournalsDiverged), do nothing."""
        other = chain(
            [ev(Kind.DRIFT_DETECTED, run="eeeeeeeeeeee", allowed=False)], after=HEALTHY[: k - 1]
        )
        plan = diagnose(snapshot(HEALTHY, other), facts(2))
        assert isinstance(plan.refusal, JournalsDiverged)
        assert f"seq {k}" in plan.refusal.what
        assert plan.refusal.exit_code == 4
        assert plan.actions == ()

    def test_edited_event_in_both_is_a_broken_chain(self):
        """The same event edited in both journals: the hash chain breaks there (refusal)."""
        edited = attrs.evolve(HEALTHY[3], data={**HEALTHY[3].data, "name": "changed"})
        events = (*HEALTHY[:3], edited, *HEALTHY[4:])
        plan = diagnose(snapshot(events), facts(2))
        assert isinstance(plan.refusal, JournalChainBroken)
        assert "seq 4" in plan.refusal.what
        assert plan.actions == ()


# An interrupted run DEAD: it took backup v2, then died inside (or after) step 3.
def interrupted(*, transactional: bool = True, backup_verified: bool = True) -> tuple[Event, ...]:
    """HEALTHY, then run DEAD: its backup of v2 and an open attempt at migration 3."""
    return chain(
        [
            *run_start(DEAD),
            ev(
                Kind.BACKUP_TAKEN,
                2,
                run=DEAD,
                **backup_data("v0002-b", 2, verified=backup_verified),
            ),
            *step(DEAD, 3, transactional=transactional, applied=False),
        ],
        after=HEALTHY,
    )


class TestDiagnoseInterruptions:
    def test_open_attempt_is_closed(self):
        """A step_started without outcome: the attempt, the run and its lock are closed."""
        plan = diagnose(snapshot(interrupted()), facts(2))
        assert action_kinds(plan) == [CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK]
        close = plan.actions[0]
        assert (close.run_id, close.version, close.direction) == (DEAD, 3, "up")
        assert plan.actions[1].run_id == plan.actions[2].run_id == DEAD

    def test_dead_lock_record_is_released(self):
        """A lock_acquired whose run finished without lock_released: only the lock is released."""
        events = chain(
            [*run_start(DEAD), ev(Kind.RUN_FINISHED, run=DEAD, outcome="succeeded")],
            after=HEALTHY,
        )
        plan = diagnose(snapshot(events), facts(2))
        assert action_kinds(plan) == [RELEASE_LOCK]
        assert plan.actions[0].run_id == DEAD

    def test_the_recovering_run_is_left_open(self):
        """The run doing the recovery is not closed, nor its lock released."""
        events = chain(run_start(ME), after=HEALTHY)
        assert not diagnose(snapshot(events), facts(2), current_run=ME).needed
        assert action_kinds(diagnose(snapshot(events), facts(2))) == [CLOSE_RUN, RELEASE_LOCK]

    def test_pending_restore_is_redone(self):
        """restore_started without backup_restored: redo it (whatever user_version is now)."""
        events = chain(
            [
                *run_start(DEAD, command="backup restore"),
                ev(
                    Kind.RESTORE_STARTED,
                    0,
                    run=DEAD,
                    backup_id="v0000-a",
                    preserved="/backups/pre-restore-x",
                    reason="requested",
                ),
            ],
            after=HEALTHY,
        )
        for now_version in (0, 2, 7):
            plan = diagnose(snapshot(events), facts(now_version))
            assert plan.refusal is None
            assert action_kinds(plan) == [REDO_RESTORE, CLOSE_RUN, RELEASE_LOCK]
            redo = plan.actions[0]
            assert redo.backup is not None and redo.backup.id == "v0000-a"
            assert redo.data["preserved"] == "/backups/pre-restore-x"

    def test_pending_restore_of_an_unknown_backup_is_refused(self):
        """A restore_started naming a backup the journal does not know: a human decides."""
        events = chain(
            [*run_start(DEAD), ev(Kind.RESTORE_STARTED, 0, run=DEAD, backup_id="nope")],
            after=HEALTHY,
        )
        plan = diagnose(snapshot(events), facts(2))
        assert isinstance(plan.refusal, IrreconcilableState)
        assert "nope" in plan.refusal.what

    def test_nontransactional_step_restores_the_run_backup(self):
        """An open non-transactional attempt: restore the run's own (verified) backup first."""
        plan = diagnose(snapshot(interrupted(transactional=False)), facts(3))
        assert action_kinds(plan) == [RESTORE_RUN_BACKUP, CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK]
        assert plan.actions[0].backup is not None and plan.actions[0].backup.id == "v0002-b"
        assert plan.refusal is None

    def test_damaged_database_with_the_run_backup_is_restored(self):
        """integrity_ok False after an interrupted run: restore that run's backup."""
        plan = diagnose(snapshot(interrupted()), facts(2, integrity_ok=False))
        assert action_kinds(plan)[0] == RESTORE_RUN_BACKUP
        assert plan.actions[0].backup is not None and plan.actions[0].backup.id == "v0002-b"
        assert "damaged" in plan.actions[0].detail

    def test_damaged_database_without_a_run_backup_is_refused(self):
        """integrity_ok False and no interrupted run: DatabaseCorrupt naming the newest backup."""
        plan = diagnose(snapshot(HEALTHY), facts(2, integrity_ok=False))
        assert isinstance(plan.refusal, DatabaseCorrupt)
        assert plan.refusal.hint is not None and "v0000-a" in plan.refusal.hint
        assert "schemalog backup restore v0000-a" in plan.refusal.hint
        assert plan.actions == ()

    def test_damaged_database_with_an_unchecked_run_backup_is_restored(self):
        """The run's backup whose background check never finished (killed first) is the one
        restored: the restore checks SHA-256 and integrity before it touches anything."""
        plan = diagnose(snapshot(interrupted(backup_verified=False)), facts(2, integrity_ok=False))
        assert plan.refusal is None
        assert RESTORE_RUN_BACKUP in action_kinds(plan)

    def test_damaged_database_without_any_verified_backup(self):
        """No verified backup at all: the refusal says so."""
        events = chain([*step(DONE, 1)])
        plan = diagnose(snapshot(events), facts(1, integrity_ok=False))
        assert isinstance(plan.refusal, DatabaseCorrupt)
        assert "no verified backup" in (plan.refusal.hint or "")

    def test_unfinished_backup_files_are_removed(self):
        """`*.tmp` files of a backup cut short are listed for removal (after the closes)."""
        partial = ("/backups/v0002-x.sqlite.tmp",)
        plan = diagnose(snapshot(interrupted()), facts(2), partial_backups=partial)
        assert action_kinds(plan) == [CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK, REMOVE_PARTIAL_BACKUP]
        assert plan.actions[-1].data == {"path": partial[0]}

    def test_user_version_mismatch_is_refused(self):
        """user_version differs from the replayed version (no restore pending): refusal."""
        plan = diagnose(snapshot(HEALTHY), facts(5))
        assert isinstance(plan.refusal, IrreconcilableState)
        assert "version 2" in plan.refusal.what and "user_version is 5" in plan.refusal.what


# --- Migrator.recover() end to end ----------------------------------------------------------


@pytest.fixture
def migrator(tmp_path: Path) -> Migrator:
    """A database upgraded to the head of BASIC (3), healthy."""
    m = make_migrator(tmp_path, write_migrations(tmp_path / "migrations", BASIC))
    m.upgrade()
    return m


def digests(m: Migrator) -> tuple[str, str | None]:
    """SHA-256 of the database file and of the JSONL (None when it does not exist)."""
    jsonl = m.paths.jsonl
    return file_digest(m.paths.database), file_digest(jsonl) if jsonl.exists() else None


def repaired(m: Migrator) -> list[dict[str, Any]]:
    """The payloads of every `journal_repaired` event."""
    return [e.data for e in of_kind(table_events(m.paths.database), "journal_repaired")]


class TestRecoverEndToEnd:
    def test_healthy_database_writes_nothing(self, migrator: Migrator):
        """Nothing to do: no event, no byte changed in the database or the JSONL."""
        before, count = digests(migrator), len(table_events(migrator.paths.database))
        plan = migrator.recover()
        assert plan.actions == () and plan.refusal is None
        assert digests(migrator) == before
        assert len(table_events(migrator.paths.database)) == count

    def test_dry_run_writes_nothing(self, migrator: Migrator):
        """`recover(dry_run=True)` on a JSONL missing its last events: a plan, no change."""
        jsonl = migrator.paths.jsonl
        lines = jsonl.read_bytes().splitlines(keepends=True)
        jsonl.write_bytes(b"".join(lines[:-3]))
        before, count = digests(migrator), len(table_events(migrator.paths.database))
        plan = migrator.recover(dry_run=True)
        assert action_kinds(plan) == [MIRROR_TO_JSONL] and len(plan.actions[0].events) == 3
        assert digests(migrator) == before
        assert len(table_events(migrator.paths.database)) == count

    def test_deleted_jsonl_is_rebuilt_identical(self, migrator: Migrator):
        """A deleted JSONL is rebuilt from the table: every old event, then the repair's."""
        db = migrator.paths.database
        old = migrator.paths.jsonl.read_bytes()
        count = len(table_events(db))
        migrator.paths.jsonl.unlink()
        migrator.recover()
        events = assert_journals_identical(db)
        assert migrator.paths.jsonl.read_bytes().startswith(old)
        assert (migrator.paths.jsonl.stat().st_mode & 0o777) == 0o600
        assert {"what": "mirrored_to_jsonl", "count": count, "first_seq": 1, "last_seq": count} in [
            {k: d[k] for k in ("what", "count", "first_seq", "last_seq") if k in d}
            for d in repaired(migrator)
        ]
        assert of_kind(events, "recovery_finished")

    def test_jsonl_cut_mid_line_is_repaired(self, migrator: Migrator):
        """A JSONL cut inside its last line: the torn bytes saved to `.torn-*`, the line mirrored."""
        db, jsonl = migrator.paths.database, migrator.paths.jsonl
        raw = jsonl.read_bytes()
        last = raw.rstrip(b"\n").rfind(b"\n") + 1
        cut = last + (len(raw) - last) // 2
        jsonl.write_bytes(raw[:cut])
        migrator.recover()
        assert_journals_identical(db)
        assert jsonl.read_bytes().startswith(raw)
        saved = list(db.parent.glob(f"{jsonl.name}.torn-*"))
        assert len(saved) == 1 and saved[0].read_bytes() == raw[last:cut]
        repairs = repaired(migrator)
        torn = [d for d in repairs if d["what"] == "torn_tail"]
        assert torn == [{"what": "torn_tail", "bytes": cut - last, "saved_to": str(saved[0])}]
        assert any(d["what"] == "mirrored_to_jsonl" and d["count"] == 1 for d in repairs)

    def test_missing_journal_table_is_rebuilt(self, migrator: Migrator):
        """A database whose journal table was dropped gets every JSONL event back."""
        db = migrator.paths.database
        old = table_events(db)
        execute(db, "DROP TABLE schemalog_journal", "DROP TABLE schemalog_meta")
        assert table_events(db) == ()
        migrator.recover()
        events = assert_journals_identical(db)
        assert events[: len(old)] == old
        assert any(
            d["what"] == "mirrored_to_table" and d["count"] == len(old) for d in repaired(migrator)
        )
        migrator.upgrade()  # the journal is usable again

    def test_diverged_journals_are_refused_and_nothing_changes(self, migrator: Migrator):
        """A JSONL rewritten from seq k (a valid chain of its own): refusal naming k, no change."""
        db, jsonl = migrator.paths.database, migrator.paths.jsonl
        old = jsonl_events(db)
        k = 5
        forged = chain(
            [ev(Kind.DRIFT_DETECTED, run="eeeeeeeeeeee", allowed=True)], after=old[: k - 1]
        )
        jsonl.write_text("".join(encode(e) + "\n" for e in forged), encoding="utf-8")
        before = digests(migrator)
        with pytest.raises(JournalsDiverged, match=f"seq {k}") as info:
            migrator.recover()
        assert info.value.exit_code == 4
        assert digests(migrator) == before
        with pytest.raises(JournalsDiverged):
            migrator.upgrade()
        assert digests(migrator) == before

    def test_user_version_changed_behind_its_back_is_refused(self, migrator: Migrator):
        """PRAGMA user_version set by someone else: IrreconcilableState, nothing changed."""
        db = migrator.paths.database
        execute(db, "PRAGMA user_version = 9")
        before = digests(migrator)
        with pytest.raises(IrreconcilableState, match="user_version is 9"):
            migrator.recover()
        assert digests(migrator) == before


def damage(db: Path, pages: int = 3) -> tuple[int, list[int]]:
    """Overwrite `pages` pages holding notes (in the middle of the file) with 0xff bytes.

    Returns the page size and the byte offsets of the damaged pages.
    """
    with closing(connect(db)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    raw = bytearray(db.read_bytes())
    holding = [off for off in range(size, len(raw), size) if b"note body" in raw[off : off + size]]
    middle = len(holding) // 2
    chosen = holding[middle : middle + pages]
    assert len(chosen) == pages, "not enough note pages to damage"
    for off in chosen:
        raw[off : off + size] = b"\xff" * size
    fd = os.open(db, os.O_WRONLY)
    try:
        for off in chosen:
            os.pwrite(fd, bytes(raw[off : off + size]), off)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size, chosen


def quick_check_passes(db: Path) -> bool:
    """Whether `PRAGMA quick_check` says ok (an error reading the file counts as a failure)."""
    with closing(connect(db)) as conn:
        try:
            return conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        except sqlite3.DatabaseError:
            return False


class TestDamagedDatabase:
    """A database that fails its integrity check (pages overwritten with garbage)."""

    def test_interrupted_run_is_restored_from_its_backup(self, tmp_path: Path):
        """Damage after a run killed mid-transaction: that run's backup is restored and the
        damaged file is preserved byte for byte next to the backups."""
        world = World(tmp_path, padding=3000)
        victim = world.victim("upgrade", failpoint="before_commit")
        assert victim.returncode == KILLED, victim.stderr[-2000:]
        run = run_of_pid(table_events(world.db), victim.pid)
        size, offsets = damage(world.db)
        assert not quick_check_passes(world.db)
        plan = world.migrator().recover()
        assert RESTORE_RUN_BACKUP in action_kinds(plan)
        check_invariants(world, victim=run)
        events = table_events(world.db)
        taken = [e for e in of_kind(events, "backup_taken") if e.run_id == run][-1]
        assert of_kind(events, "backup_restored")[-1].data["backup_id"] == taken.data["id"]
        preserved = Path(of_kind(events, "restore_started")[-1].data["preserved"])
        kept = (preserved / world.db.name).read_bytes()
        assert all(kept[off : off + size] == b"\xff" * size for off in offsets)
        manifest = json.loads((preserved / "preserved.json").read_text())
        entry = next(f for f in manifest["files"] if f["name"] == world.db.name)
        assert entry["sha256"] == hashlib.sha256(kept).hexdigest()
        world.migrator().upgrade()
        check_invariants(world)

    def test_damage_without_an_interrupted_run_is_refused(self, tmp_path: Path):
        """Damage with a clean journal: DatabaseCorrupt naming the newest verified backup; the
        file is left exactly as it was."""
        world = World(tmp_path, padding=3000)
        world.migrator().upgrade(3)
        newest = world.migrator().backup_list()[-1]
        damage(world.db)
        assert not quick_check_passes(world.db)
        before = file_digest(world.db), file_digest(world.paths.jsonl)
        with pytest.raises(DatabaseCorrupt) as info:
            world.migrator().recover()
        assert info.value.exit_code == 4
        assert f"schemalog backup restore {newest.id}" in (info.value.hint or "")
        assert (file_digest(world.db), file_digest(world.paths.jsonl)) == before

    def test_damaged_journal_table_is_refused_naming_a_backup(self, tmp_path: Path):
        """Damage in the journal table's own pages (the JSONL is intact): exit 4, naming the
        newest verified backup, nothing changed."""
        world = World(tmp_path, padding=3000)
        world.migrator().upgrade(3)
        newest = world.migrator().backup_list()[-1]
        with closing(connect(world.db)) as conn:
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        raw = world.db.read_bytes()
        page = next(o for o in range(size, len(raw), size) if b"step_applied" in raw[o : o + size])
        fd = os.open(world.db, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\xff" * size, page)
        finally:
            os.close(fd)
        before = file_digest(world.db), file_digest(world.paths.jsonl)
        with pytest.raises(NeedsHuman) as info:
            world.migrator().recover()
        assert info.value.exit_code == 4
        assert newest.id in info.value.message
        assert (file_digest(world.db), file_digest(world.paths.jsonl)) == before


class TestRefusalHintsLeadSomewhere:
    """The command an exit-4 refusal names as the next step must be able to run."""

    def test_restore_named_after_a_user_version_change_runs(self, migrator: Migrator):
        """user_version changed behind schemalog's back: `backup restore ID` repairs it."""
        newest = migrator.backup_list()[-1]
        execute(migrator.paths.database, "PRAGMA user_version = 9")
        with pytest.raises(IrreconcilableState, match="backup"):
            migrator.recover()
        migrator.backup_restore(newest.id)
        assert migrator.status().version == newest.version
        assert_journals_identical(migrator.paths.database)

    def test_restore_named_by_database_corrupt_runs(self, tmp_path: Path):
        """A run killed before its backup finished, then damage: the named restore runs."""
        world = World(tmp_path, padding=3000)
        world.migrator().upgrade(3)
        victim = world.victim("upgrade", failpoint="mid_backup")
        assert victim.returncode == KILLED, victim.stderr[-2000:]
        damage(world.db)
        with pytest.raises(DatabaseCorrupt) as info:
            world.migrator().recover()
        newest = world.migrator().backup_list()[-1]
        assert f"schemalog backup restore {newest.id}" in (info.value.hint or "")
        world.migrator().backup_restore(newest.id)
        assert quick_check_passes(world.db)
        assert world.migrator().status().version == newest.version

    def test_backup_list_named_for_an_unopenable_database_runs(self, migrator: Migrator):
        """A database whose header is garbage: `backup list` still lists the backups, and the
        restore the refusal names puts the newest backup in place, keeping the garbage."""
        expected = [b.id for b in migrator.backup_list()]
        garbage_version = migrator.status().version
        fd = os.open(migrator.paths.database, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\xff" * 100, 0)
        finally:
            os.close(fd)
        damaged = migrator.paths.database.read_bytes()
        with pytest.raises(NeedsHuman, match="backup restore") as info:
            migrator.recover()
        assert [b.id for b in migrator.backup_list()] == expected
        named = info.value.hint.split("`schemalog backup restore ")[1].rstrip("`")
        preserved = migrator.backup_restore(named)
        assert (preserved / migrator.paths.database.name).read_bytes() == damaged
        status = migrator.status()
        assert status.version == status.user_version
        assert status.version <= garbage_version
        assert status.journal["consistent"]
        assert migrator.recover().actions == ()

"""Tests for schemalog.engine.shell.recovery: recovery end to end on real files (a deleted, torn
or diverging JSONL, a missing journal table, a damaged database, a healthy one)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from schemalog.engine.base.errors import DatabaseCorrupt, IrreconcilableState, NeedsHuman
from schemalog.engine.core.diagnosis import (
    MIRROR_TO_JSONL,
    REMOVE_PARTIAL_BACKUP,
    RESTORE_RUN_BACKUP,
)
from schemalog.engine.migrator import Migrator
from schemalog.journal.codec import encode
from schemalog.journal.errors import JournalsDiverged
from schemalog.journal.events import Kind
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
from tests.engine.core.test_diagnosis import action_kinds, chain, ev
from tests.engine.test_crash import KILLED, World, check_invariants, run_of_pid

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

    def test_removes_only_its_own_partial_backups(self, migrator: Migrator):
        """An unfinished backup file is removed; a `*.tmp` file of the user's stays."""
        backups = migrator.paths.backup_dir
        (backups / "v0001-20260101T000000.000000Z.sqlite.tmp").write_bytes(b"partial")
        (backups / "mine.tmp").write_bytes(b"the user's")
        plan = migrator.recover()
        assert action_kinds(plan) == [REMOVE_PARTIAL_BACKUP]
        assert sorted(p.name for p in backups.iterdir() if p.suffix == ".tmp") == ["mine.tmp"]

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
        preserved = migrator.backup_restore(named).preserved
        assert (preserved / migrator.paths.database.name).read_bytes() == damaged
        status = migrator.status()
        assert status.version == status.user_version
        assert status.version <= garbage_version
        assert status.journal["consistent"]
        assert migrator.recover().actions == ()

"""Invariants 1 and 2 of DESIGN.md as a Hypothesis state machine.

Random sequences of commands — upgrade to a random target, downgrade to a random target, an
upgrade through a migration that fails halfway, backup create, backup restore — run against
one database. After every command: `PRAGMA user_version` equals the replayed version and the
model's version, both journals hold the same valid hash chain, the live schema fingerprint
equals the one the journal recorded last, no attempt or run is left open, and the lock is free.

Migration 3 fails on its second statement while the (data-only) `switch` row says so; the
fingerprint ignores rows, so flipping it behind schemalog's back is not drift.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from schemalog.engine.base.errors import StepFailed, UsageError
from schemalog.journal import failpoints
from schemalog.journal.chain import GENESIS, find_break, seal
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.replay import replay
from tests.engine.conftest import (
    execute,
    jsonl_events,
    live_fingerprint,
    make_migrator,
    table_events,
    table_names,
    user_version,
    write_migrations,
)

MIGRATIONS = {
    "001_items_and_switch.sql": """
        -- Items, and the switch that makes migration 3 fail.
        -- migrate:up
        CREATE TABLE switch (on_ INTEGER NOT NULL);
        INSERT INTO switch (on_) VALUES (0);
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        INSERT INTO items (name) VALUES ('alpha'), ('beta'), ('gamma');
        -- migrate:down
        DROP TABLE items;
        DROP TABLE switch;
        """,
    "002_tags.sql": """
        -- Tags referencing items.
        -- migrate:up
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items (id),
            label TEXT NOT NULL
        );
        CREATE INDEX idx_tags_item ON tags (item_id);
        INSERT INTO tags (item_id, label) SELECT id, 'tag of ' || name FROM items;
        -- migrate:down
        DROP TABLE tags;
        """,
    "003_guarded.sql": """
        -- Fails on statement 2 while switch.on_ = 1.
        -- migrate:up
        CREATE TABLE guard (v INTEGER CHECK (v = 0));
        INSERT INTO guard (v) SELECT on_ FROM switch;
        -- migrate:down
        DROP TABLE guard;
        """,
    "004_rebuild_items.sql": """
        -- Rebuild items with a note column (12-step, foreign keys off).
        -- migrate:up foreign_keys:false
        CREATE TABLE new_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);
        INSERT INTO new_items (id, name) SELECT id, name FROM items;
        DROP TABLE items;
        ALTER TABLE new_items RENAME TO items;
        -- migrate:down
        CREATE TEMP TABLE items_before AS SELECT id, name FROM items;
        DROP TABLE items;
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        INSERT INTO items (id, name) SELECT id, name FROM temp.items_before;
        DROP TABLE temp.items_before;
        """,
    "005_vacuum.sql": """
        -- Reclaim space outside any transaction.
        -- migrate:up transaction:false
        VACUUM;
        -- migrate:down
        VACUUM;
        """,
}
HEAD = len(MIGRATIONS)
FAILING = 3
MODES = st.sampled_from(["run", "step"])


class JournalMachine(RuleBasedStateMachine):
    """One database driven by random commands; `version` is what it must be at."""

    restores = False

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="schemalog-invariants-"))
        self.migrations = write_migrations(self.tmp / "migrations", MIGRATIONS)
        self.db = self.tmp / "app.db"
        self.version = 0

    def migrator(self, transaction: str = "run"):
        """A fresh Migrator, as a new command would build it."""
        return make_migrator(self.tmp, self.migrations, transaction=transaction)

    def set_switch(self, on: int) -> None:
        """Make migration 3 fail (1) or pass (0); rows only, so not a schema change."""
        if self.db.exists() and "switch" in table_names(self.db):
            execute(self.db, f"UPDATE switch SET on_ = {on}")

    # -- commands ------------------------------------------------------------------------

    @initialize(to=st.integers(1, HEAD), mode=MODES)
    def start(self, to: int, mode: str) -> None:
        """Create the database at a random version (this also takes the run's backup)."""
        self.migrator(mode).upgrade(to)
        self.version = to

    @rule(to=st.integers(0, HEAD), mode=MODES)
    def upgrade(self, to: int, mode: str) -> None:
        """Upgrade to `to`; a target below the current version is refused."""
        self.set_switch(0)
        m = self.migrator(mode)
        if to < self.version:
            with pytest.raises(UsageError):
                m.upgrade(to)
            return
        m.upgrade(to)
        self.version = to

    @rule(to=st.integers(0, HEAD), mode=MODES)
    def downgrade(self, to: int, mode: str) -> None:
        """Downgrade to `to`; a target above the current version is refused."""
        m = self.migrator(mode)
        if to > self.version:
            with pytest.raises(UsageError):
                m.downgrade(to)
            return
        m.downgrade(to)
        self.version = to

    @precondition(lambda self: 1 <= self.version < FAILING)
    @rule(to=st.integers(FAILING, HEAD), mode=MODES)
    def failing_upgrade(self, to: int, mode: str) -> None:
        """Upgrade through migration 3 while it fails: the run stops right below it."""
        self.set_switch(1)
        try:
            with pytest.raises(StepFailed) as info:
                self.migrator(mode).upgrade(to)
            assert info.value.version == FAILING
        finally:
            self.set_switch(0)
        self.version = FAILING - 1
        assert "guard" not in table_names(self.db)

    @precondition(lambda self: self.db.exists())
    @rule()
    def backup_create(self) -> None:
        """Take a backup; it records the current version."""
        record = self.migrator().backup_create()
        assert record.version == self.version

    @precondition(lambda self: self.restores and self.db.exists())
    @rule(data=st.data())
    def backup_restore(self, data: st.DataObject) -> None:
        """Restore one of the known backups; the database is then at its version."""
        m = self.migrator()
        backups = m.backup_list()
        if not backups:
            return
        record = data.draw(st.sampled_from(backups), label="backup")
        m.backup_restore(record.id)
        self.version = record.version
        self.set_switch(0)

    # -- what must hold after every command ------------------------------------------------

    @invariant()
    def database_and_journals_agree(self) -> None:
        """Invariants 1 and 2: one version everywhere, identical journals, recorded schema."""
        if not self.db.exists():
            return
        table, jsonl = table_events(self.db), jsonl_events(self.db)
        assert [e.hash for e in table] == [e.hash for e in jsonl]
        assert find_break(table) is None
        state = replay(table)
        assert user_version(self.db) == state.version == self.version
        if state.fingerprint is not None:
            assert live_fingerprint(self.db) == state.fingerprint
        assert state.open_attempts == ()
        assert state.open_runs == ()
        assert state.lock is None
        assert [a.version for a in state.applied] == list(range(1, self.version + 1))
        assert ("guard" in table_names(self.db)) == (self.version >= FAILING)

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class JournalMachineWithRestore(JournalMachine):
    """The same machine with `backup_restore` enabled, and an undo of a downgrade."""

    restores = True

    @precondition(lambda self: self.version >= 1)
    @rule(to=st.integers(0, HEAD - 1))
    def undo_downgrade_from_backup(self, to: int) -> None:
        """Back up, downgrade, then restore that backup: the database is where it was."""
        m = self.migrator()
        record = m.backup_create()
        to = min(to, self.version - 1)
        m.downgrade(to)
        m.backup_restore(record.id)
        assert record.version == self.version
        self.set_switch(0)


CRASH_DRIVER = Path(__file__).with_name("crash_driver.py")
CRASH_POINTS = st.sampled_from([n for n in failpoints.NAMES if n != "mid_restore"]).flatmap(
    lambda name: st.sampled_from([name, f"{name}@2", f"{name}@3"])
)


class JournalMachineWithCrashes(JournalMachineWithRestore):
    """The machine with restores, plus commands killed by SIGKILL at a random failpoint."""

    @precondition(lambda self: self.db.exists())
    @rule(point=CRASH_POINTS, mode=MODES, data=st.data())
    def crash_then_recover(self, point: str, mode: str, data: st.DataObject) -> None:
        """A command dies at `point` (a real process, SIGKILL); `recover()` then restores
        invariants 1-3, and the version is whatever the journal and the database agree on."""
        if self.version == 0 or (self.version < HEAD and data.draw(st.booleans(), "up")):
            direction, to = "upgrade", data.draw(st.integers(self.version + 1, HEAD), "to")
        else:
            direction, to = "downgrade", data.draw(st.integers(0, self.version - 1), "to")
        env = {**os.environ, failpoints.ENV: point}
        proc = subprocess.run(
            [
                sys.executable,
                str(CRASH_DRIVER),
                str(self.db),
                str(self.migrations),
                "--transaction",
                mode,
                direction,
                "--to",
                str(to),
            ],
            env=env,
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode in (0, -9), proc.stderr
        before = self.version
        self.migrator().recover()
        self.version = replay(table_events(self.db)).version
        low, high = min(before, to), max(before, to)
        assert low <= self.version <= high


SETTINGS = settings(
    max_examples=8,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TestJournalInvariants:
    """Random command sequences never break invariants 1 and 2."""

    def test_upgrade_downgrade_fail_and_backup(self):
        """Upgrades, downgrades, failing upgrades and backups keep database and journals agreeing."""
        run_state_machine_as_test(JournalMachine, settings=SETTINGS)

    def test_with_backup_restore(self):
        """Adding backup restores to the commands keeps database and journals agreeing."""
        run_state_machine_as_test(
            JournalMachineWithRestore,
            # no shrinking: while the bug stands, shrinking only repeats the same failure
            settings=settings(SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate]),
        )


class TestJournalInvariantsUnderCrashes:
    """Random sequences that include SIGKILLs at failpoints keep invariants 1-3."""

    def test_up_down_restore_and_crashes(self):
        """Up, down, failing runs, backups, restores and crashes + recovery keep everything agreeing."""
        run_state_machine_as_test(
            JournalMachineWithCrashes,
            settings=settings(SETTINGS, max_examples=6, stateful_step_count=8),
        )


def chain_of(*drafts: Draft) -> list[Event]:
    """Seal `drafts` into a valid chain 1, 2, 3, ..."""
    events: list[Event] = []
    prev = GENESIS
    for seq, draft in enumerate(drafts, start=1):
        event = seal(draft, seq=seq, prev=prev)
        events.append(event)
        prev = event.hash
    return events


def _backup(version: int, backup_id: str) -> Draft:
    data = {"id": backup_id, "path": f"/b/{backup_id}.sqlite", "version": version}
    return Draft("r", Kind.BACKUP_TAKEN, version, {**data, "verified": True, "sha256": "x"})


def _restored(version: int, backup_id: str) -> Draft:
    data = {"backup_id": backup_id, "version": version, "fingerprint": f"fp{version}"}
    return Draft("r", Kind.BACKUP_RESTORED, version, data)


class TestReplayAfterRestore:
    """Replaying a restore gives the applied migrations the restored database holds."""

    def test_restore_to_an_older_backup_forgets_later_migrations(self):
        """Restoring a version-1 backup at version 2 leaves migration 1 applied, 2 not."""
        events = chain_of(
            Draft("r", Kind.STEP_APPLIED, 1, {"name": "a", "checksum": "c1"}),
            _backup(1, "b1"),
            Draft("r", Kind.STEP_APPLIED, 2, {"name": "b", "checksum": "c2"}),
            _restored(1, "b1"),
        )
        state = replay(events)
        assert state.version == 1
        assert [a.version for a in state.applied] == [1]

    def test_restore_forward_brings_back_the_backups_migrations(self):
        """Downgrade to 0, then restore the version-1 backup: migration 1 is applied again."""
        events = chain_of(
            Draft("r", Kind.STEP_APPLIED, 1, {"name": "a", "checksum": "c1"}),
            _backup(1, "b1"),
            Draft("r", Kind.STEP_REVERTED, 1, {"name": "a", "to_version": 0}),
            _restored(1, "b1"),
        )
        state = replay(events)
        assert state.version == 1
        assert [(a.version, a.checksum) for a in state.applied] == [(1, "c1")]

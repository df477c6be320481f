"""Crash tests (invariant 3): a real process dies by SIGKILL at every failpoint, and at random
instants of a long run; then `Migrator.recover()` -- or just the next `upgrade()`, which
recovers first -- must leave both journals identical, the replayed version equal to
`PRAGMA user_version` and to the recorded schema, no lock, every seeded row, the dead run
shown as interrupted, and a database that the next `upgrade()` takes to the head.

The victim is tests/engine/crash_driver.py, run with `SCHEMALOG_FAILPOINT` set. The rules
each test proves are listed, crash window by crash window, in docs/recovery.md.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import pytest

from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import Settings
from schemalog.engine.core.diagnosis import RESTORE_RUN_BACKUP, RecoveryPlan
from schemalog.engine.migrator import Migrator
from schemalog.engine.shell.lock import probe
from schemalog.journal import failpoints
from schemalog.journal.events import Event
from schemalog.journal.replay import State, replay
from tests.engine.conftest import (
    assert_journals_identical,
    connect,
    jsonl_events,
    live_fingerprint,
    of_kind,
    table_events,
    user_version,
    write_migrations,
)

DRIVER = Path(__file__).with_name("crash_driver.py")
HEAD = 7
SEEDED_NOTES = 40

# Seven migrations covering every way the executor runs a step: SQL, a Python function,
# a table rebuild with foreign keys off (a transaction of its own), and VACUUM
# (non-transactional: a fresh backup is taken right before it).
CRASH_SET: dict[str, str] = {
    "001_create_notes.sql": """
        -- Notes (seeded by the tests once this is applied).
        -- migrate:up
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        -- migrate:down
        DROP TABLE notes;
        """,
    "002_create_labels.sql": """
        -- Labels of notes, one per existing note.
        -- migrate:up
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
            name TEXT NOT NULL
        );
        INSERT INTO labels (note_id, name) SELECT id, 'seeded' FROM notes;
        -- migrate:down
        DROP TABLE labels;
        """,
    "003_add_note_title.py": '''
        """A title per note, filled from its id (a Python step)."""


        def up(conn):
            conn.execute("ALTER TABLE notes ADD COLUMN title TEXT")
            conn.execute("UPDATE notes SET title = 'note ' || id")


        down = "ALTER TABLE notes DROP COLUMN title;"
        verify = ["SELECT COUNT(*) = 0 FROM notes WHERE title IS NULL"]
        ''',
    "004_index_labels.sql": """
        -- Index labels by name.
        -- migrate:up
        CREATE INDEX idx_labels_name ON labels (name);
        -- migrate:down
        DROP INDEX idx_labels_name;
        """,
    "005_rebuild_notes.py": '''
        """Rebuild notes with a CHECK on body (foreign keys off: its own transaction)."""

        foreign_keys = False

        up = """
        CREATE TABLE new_notes (
            id INTEGER PRIMARY KEY, body TEXT NOT NULL CHECK (length(body) > 0), title TEXT
        );
        INSERT INTO new_notes (id, body, title) SELECT id, body, title FROM notes;
        DROP TABLE notes;
        ALTER TABLE new_notes RENAME TO notes;
        """
        down = """
        CREATE TABLE old_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, title TEXT);
        INSERT INTO old_notes (id, body, title) SELECT id, body, title FROM notes;
        DROP TABLE notes;
        ALTER TABLE old_notes RENAME TO notes;
        """
        ''',
    "006_compact.py": '''
        """Compact the file (VACUUM cannot run in a transaction)."""

        transactional = False
        up = "VACUUM;"
        down = "VACUUM;"
        ''',
    "007_add_note_pinned.sql": """
        -- A pinned flag per note.
        -- migrate:up
        ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
        -- migrate:down
        ALTER TABLE notes DROP COLUMN pinned;
        """,
}

# A failpoint that SIGKILLs must make the driver exit with this code.
KILLED = -signal.SIGKILL


# --- the world a victim runs in ------------------------------------------------------------


@attrs.frozen
class Victim:
    """A finished (or killed) driver process."""

    pid: int
    returncode: int
    stderr: str


class World:
    """A database at some version with seeded notes, its migrations, and a victim launcher."""

    def __init__(self, root: Path, files: dict[str, str] = CRASH_SET, padding: int = 0) -> None:
        """Apply migration 1 and seed SEEDED_NOTES notes (bodies padded by `padding` bytes)."""
        self.root = root
        self.migrations = write_migrations(root / "migrations", files)
        self.db = root / "app.db"
        self.settings = Settings(database=self.db, migrations=self.migrations, lock_timeout=5.0)
        self.migrator().upgrade(1)
        with closing(connect(self.db)) as conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO notes (id, body) SELECT i, 'note body ' || i || ? FROM n",
                (SEEDED_NOTES, "x" * padding),
            )
        self.seeded = self.notes()

    @property
    def paths(self) -> DatabasePaths:
        """The files of the database."""
        return self.settings.paths

    def migrator(self, **settings: Any) -> Migrator:
        """A Migrator on the database (in this process)."""
        return Migrator(attrs.evolve(self.settings, **settings))

    def notes(self) -> list[tuple[int, str]]:
        """The (id, body) of every note."""
        with closing(connect(self.db)) as conn:
            return conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()

    def command(self, *args: str, transaction: str = "run") -> list[str]:
        """The argv running the driver with `args`."""
        return [
            sys.executable,
            str(DRIVER),
            str(self.db),
            str(self.migrations),
            "--transaction",
            transaction,
            *args,
        ]

    def env(self, failpoint: str | None) -> dict[str, str]:
        """The victim's environment: this one, with the failpoint armed (or none)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        if failpoint:
            env[failpoints.ENV] = failpoint
        return env

    def victim(self, *args: str, failpoint: str | None, transaction: str = "run") -> Victim:
        """Run the driver to its end (or its death)."""
        proc = subprocess.Popen(
            self.command(*args, transaction=transaction),
            env=self.env(failpoint),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate(timeout=60)
        return Victim(proc.pid, proc.returncode, err)

    def backup_id(self, version: int) -> str:
        """The id of the newest backup of `version` the journal knows."""
        return [b.id for b in self.migrator().backup_list() if b.version == version][-1]


def run_of_pid(events: tuple[Event, ...] | list[Event], pid: int) -> str | None:
    """The run id whose `run_started` names process `pid` (None if it never got recorded)."""
    for e in of_kind(events, "run_started"):
        if e.data.get("pid") == pid:
            return e.run_id
    return None


def check_invariants(world: World, *, victim: str | None = None) -> State:
    """Assert invariants 1-3 after a command; return the replayed state.

    Both journals identical and valid; replayed version == user_version; the live schema is
    the one recorded for that version; no open run, attempt or restore; lock free and
    released in the journal; every seeded note intact; the victim's run interrupted.
    """
    events = assert_journals_identical(world.db)
    state = replay(events)
    assert state.version == user_version(world.db)
    live = live_fingerprint(world.db)
    assert state.fingerprint == live
    applied = state.applied_by_version.get(state.version)
    if applied is not None and applied.fingerprint_after is not None:
        assert applied.fingerprint_after == live
    assert not state.open_runs, state.open_runs
    assert not state.open_attempts, state.open_attempts
    assert state.pending_restore is None
    assert state.lock is None, "the journal still shows the lock held"
    assert probe(world.paths.lock).held is False
    assert world.notes() == world.seeded, "a seeded row was lost or changed"
    with closing(connect(world.db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    if victim is not None:
        run = next(r for r in state.runs if r.run_id == victim)
        assert run.outcome == "interrupted", run
        for attempt in state.attempts:
            if attempt.run_id == victim:
                assert attempt.outcome in ("applied", "reverted", "interrupted"), attempt
        if any(e.run_id == victim for e in of_kind(events, "lock_acquired")):
            released = [
                e for e in of_kind(events, "lock_released") if e.data.get("holder_run_id") == victim
            ]
            assert released, "recovery did not record the dead run's lock as released"
    return state


def check_upgrade_to_head(world: World, *, victim: str | None = None) -> None:
    """A following `upgrade()` completes to the head and keeps the invariants."""
    world.migrator().upgrade()
    state = check_invariants(world, victim=victim)
    assert state.version == user_version(world.db) == HEAD


# --- one crash per failpoint, and the N-th-hit variants ----------------------------------------


@attrs.frozen
class Crash:
    """A victim command, the failpoint that kills it, and what recovery must then show."""

    failpoint: str
    version: int  # replayed version right after recovery
    command: tuple[str, ...] = ("upgrade",)
    transaction: str = "run"
    start: int = 1  # version the database is at before the victim runs
    then: str | None = None  # a second victim, `recover`, killed at this failpoint
    big: bool = False  # 20 MB of extra notes: a restore copy is cut mid-way
    restores: bool = False  # recovery restores the run's own backup
    torn: bool = False  # the JSONL ends in a torn line
    table_ahead: bool = False  # committed events are missing from the JSONL
    partial_backup: bool = False  # an unfinished backup file is left behind
    interrupted: int | None = None  # version of an attempt history must show "interrupted"
    redo_restore: bool = False  # an interrupted `backup restore` is redone
    may_be_unwired: bool = False  # one of the plain failpoint names
    nothing_to_recover: bool = False  # killed before writing anything: recovery has no work
    xfail: str | None = None  # "bug: ..." while the case fails because of a known bug

    @property
    def id(self) -> str:
        parts = [self.failpoint]
        if self.command != ("upgrade",):
            parts.append("-".join(a for a in self.command[:2] if not a.startswith("-")))
        if self.transaction != "run":
            parts.append(f"tx={self.transaction}")
        if self.then:
            parts.append(f"recover-killed-at-{self.then}")
        if self.big:
            parts.append("20MB")
        return "/".join(parts)


# Hits during `upgrade` 1 -> 7 (transaction "run"): run_started + lock_acquired (mid_append@1,
# after_run_started), the run's backup (mid_backup@1, backup_taken = mid_append@2), BEGIN,
# steps 2-4 (after_step_started@1-3), COMMIT before step 5 (before/after_commit@1, JSONL =
# mid_append@3), step 5 in its own transaction (after_step_started@4, commit @2, mid_append@4),
# fresh backup (mid_backup@2, mid_append@5), VACUUM's step_started (mid_append@6,
# after_step_started@5), VACUUM, step_applied (mid_append@7), step 7 (after_step_started@6),
# final COMMIT (before/after_commit@3, mid_append@8), run_finished (mid_append@9). VACUUM commits itself: a crash after
# it keeps version 6. With transaction "step" every step commits (before/after_commit@N
# is step N+1's commit).
BASE = {
    "after_lock": Crash("after_lock", 1, nothing_to_recover=True),
    "after_run_started": Crash("after_run_started", 1, may_be_unwired=True),
    "after_step_started": Crash("after_step_started", 1, interrupted=2, may_be_unwired=True),
    "before_commit": Crash("before_commit", 1, interrupted=2, may_be_unwired=True),
    "after_commit": Crash("after_commit", 4, may_be_unwired=True),
    "mid_backup": Crash("mid_backup", 1, partial_backup=True, may_be_unwired=True),
    "mid_restore": Crash(
        "mid_restore",
        1,
        command=("backup", "restore", "@v1"),
        start=4,
        redo_restore=True,
        may_be_unwired=True,
    ),
    "mid_append": Crash("mid_append", 1, torn=True, may_be_unwired=True),
}
assert set(BASE) == set(failpoints.NAMES), "a failpoint has no crash case"

VARIANTS = [
    Crash("after_step_started@3", 1),
    Crash("after_step_started@4", 4),
    # VACUUM (outside a transaction) interrupted before it ran: closed, nothing restored.
    Crash("after_step_started@5", 5, interrupted=6),
    Crash("before_commit@2", 4, interrupted=5),
    Crash("before_commit@3", 6, interrupted=7),
    Crash("before_commit@2", 2, transaction="step"),
    Crash("after_commit@2", 3, transaction="step"),
    Crash("mid_backup@2", 5, partial_backup=True),
    Crash("mid_append@2", 1, torn=True),
    Crash("mid_append@3", 4, torn=True, table_ahead=True),
    Crash("mid_append@7", 6, torn=True),  # VACUUM ran to its end: recorded as applied
    Crash("mid_append@8", 7, torn=True, table_ahead=True),
    Crash("mid_append@9", 7, torn=True),  # run_finished + lock_released torn: all steps done
    # downgrade 7 -> 3: step 7 reverted and committed, then VACUUM's down is interrupted.
    Crash(
        "after_step_started@2",
        6,
        command=("downgrade", "--to", "3"),
        start=7,
        interrupted=6,
    ),
    Crash("mid_backup", 1, command=("backup", "create"), partial_backup=True),
    # The restore's copy cut mid-way (a hot rollback journal is left), not after its last page.
    Crash(
        "mid_restore", 1, command=("backup", "restore", "@v1"), start=4, big=True, redo_restore=True
    ),
    # Recovery itself killed in its appends.
    Crash("after_step_started@5", 5, then="mid_append@3", interrupted=6),
    Crash("mid_append@3", 4, then="mid_append@1", torn=True, table_ahead=True),
]
CASES = [*BASE.values(), *VARIANTS]


def _param(case: Crash):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def make_world(tmp_path: Path, case: Crash) -> World:
    """The world `case` starts from."""
    world = World(tmp_path)
    if case.big:  # 20 MB more notes: bigger than one step (4096 pages) of a restore's copy
        with closing(connect(world.db)) as conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
                "INSERT INTO notes (id, body) SELECT 1000 + i, hex(randomblob(2000)) FROM n"
            )
        world.seeded = world.notes()
    if case.start > 1:
        world.migrator().upgrade(case.start)
    return world


def crash(world: World, case: Crash) -> tuple[Victim, str | None]:
    """Run the victim(s) of `case`; skip when its failpoint is not wired; return the first
    victim and its run id."""
    args = tuple(world.backup_id(int(a[2:])) if a.startswith("@v") else a for a in case.command)
    before = table_events(world.db)
    proc = world.victim(*args, failpoint=case.failpoint, transaction=case.transaction)
    if proc.returncode == 0 and case.may_be_unwired:
        pytest.skip(f"failpoint {case.failpoint} is not wired: the victim ran to completion")
    assert proc.returncode == KILLED, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    if case.big:  # checked before any connection rolls the hot journal back
        assert world.paths.rollback_journal.exists(), "the restore was not cut mid-copy"
    table, jsonl = table_events(world.db), jsonl_events(world.db)
    assert jsonl[: len(before)] == before, "a past event changed"
    if not case.redo_restore:  # a restore killed after its copy leaves the backup's table
        assert table[: len(before)] == before, "a past event changed"
    if case.partial_backup:
        assert list(world.paths.backup_dir.glob("*.tmp")), "no unfinished backup file"
    run = run_of_pid(table + jsonl, proc.pid)
    if case.then is not None:
        second = world.victim("recover", failpoint=case.then)
        assert second.returncode == KILLED, f"exit {second.returncode}: {second.stderr[-2000:]}"
    return proc, run


def check_case_effects(world: World, case: Crash, victim: str | None, plan: RecoveryPlan | None):
    """What recovery must have recorded (and left on disk) for this particular crash."""
    events = table_events(world.db)
    repaired = {e.data.get("what") for e in of_kind(events, "journal_repaired")}
    if case.torn:
        assert "torn_tail" in repaired
        torn = list(world.db.parent.glob(f"{world.paths.jsonl.name}.torn-*"))
        assert torn and all(t.stat().st_size > 0 for t in torn)
    if case.table_ahead:
        assert "mirrored_to_jsonl" in repaired
    if case.partial_backup:
        assert not list(world.paths.backup_dir.glob("*.tmp")), "unfinished backup file left"
    if case.restores:
        if plan is not None and case.then is None:
            assert RESTORE_RUN_BACKUP in [a.kind for a in plan.actions]
        taken = [e for e in of_kind(events, "backup_taken") if e.run_id == victim]
        restored = of_kind(events, "backup_restored")
        assert restored and restored[-1].data["backup_id"] == taken[-1].data["id"]
        for started in of_kind(events, "restore_started"):
            assert (Path(started.data["preserved"]) / "preserved.json").is_file()
    if case.interrupted is not None:
        history = world.migrator().history()
        assert any(
            h.run_id == victim and h.version == case.interrupted and h.outcome == "interrupted"
            for h in history
        ), history
    if case.redo_restore:
        started = [e for e in of_kind(events, "restore_started") if e.run_id == victim]
        assert started, "the victim's restore_started was not recorded"
        backup_id = started[0].data["backup_id"]
        restored = [e for e in of_kind(events, "backup_restored") if e.seq > started[0].seq]
        assert [e.data["backup_id"] for e in restored][:1] == [backup_id]
        # The pre-restore database, preserved before the copy began, is still there.
        preserved = Path(started[0].data["preserved"])
        assert (preserved / "preserved.json").is_file()
        with closing(connect(preserved / world.db.name)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == case.start


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
class TestCrashAtFailpoint:
    """A victim killed at a failpoint; then recovery, and a run to the head."""

    def test_recover(self, tmp_path: Path, case: Crash):
        """`Migrator.recover()` restores invariants 1-3 and records what it did."""
        world = make_world(tmp_path, case)
        _, victim = crash(world, case)
        plan = world.migrator().recover()
        assert bool(plan.actions) != case.nothing_to_recover, plan.actions
        state = check_invariants(world, victim=victim)
        assert state.version == case.version
        kinds = [e.kind.value for e in table_events(world.db)]
        if not case.nothing_to_recover:
            assert "recovery_started" in kinds and kinds[-1] == "recovery_finished"
        check_case_effects(world, case, victim, plan)
        assert world.migrator().recover().actions == (), "a second recovery found work"
        check_upgrade_to_head(world, victim=victim)

    def test_next_upgrade(self, tmp_path: Path, case: Crash):
        """The next `upgrade()` recovers first, then completes to the head."""
        world = make_world(tmp_path, case)
        _, victim = crash(world, case)
        report = world.migrator().upgrade()
        assert report.recovery is not None
        assert bool(report.recovery.actions) != case.nothing_to_recover
        state = check_invariants(world, victim=victim)
        assert state.version == HEAD
        check_case_effects(world, case, victim, None)


def test_killed_right_after_taking_the_lock(tmp_path: Path):
    """Killed with the lock just taken (the window of the unwired `after_lock`): the kernel
    drops the flock, the dead holder's record in the lock file holds nothing, and the
    journal has nothing to repair."""
    world = World(tmp_path)
    count = len(table_events(world.db))
    code = (
        "import os, signal, socket, sys\n"
        f"sys.path.insert(0, {str(DRIVER.parents[2])!r})\n"
        "from schemalog.engine.shell.lock import Holder, MigrationLock\n"
        "lock = MigrationLock(sys.argv[1])\n"
        "holder = Holder(os.getpid(), socket.gethostname(), 'deadholder01', 'up', 'now')\n"
        "lock.acquire(holder, timeout=5)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(world.paths.lock)], check=False)
    assert proc.returncode == KILLED
    status = probe(world.paths.lock)
    assert status.held is False
    assert status.holder is not None and status.holder.run_id == "deadholder01"
    assert world.migrator().recover().actions == ()
    assert len(table_events(world.db)) == count
    check_upgrade_to_head(world)


# --- SIGKILL at random instants of a long run -------------------------------------------------

SOAK_MIGRATIONS = 200
SOAK_KILLS = int(os.environ.get("SCHEMALOG_SOAK") or 10)
# Longer than a whole 200-step run here (about 1 s with one transaction, 2 s with one per
# step): kills land anywhere from recovery-at-start to the final commit.
SOAK_WINDOW_S = 1.5


def soak_set(count: int = SOAK_MIGRATIONS) -> dict[str, str]:
    """CRASH_SET's 001, then `count - 1` small migrations: tables filled from the notes, and
    every 50th a VACUUM (non-transactional)."""
    files = {"001_create_notes.sql": CRASH_SET["001_create_notes.sql"]}
    for v in range(2, count + 1):
        if v % 50 == 0:
            files[f"{v:03d}_compact.py"] = (
                '"""Compact."""\ntransactional = False\nup = "VACUUM;"\ndown = "VACUUM;"\n'
            )
            continue
        files[f"{v:03d}_table_{v}.sql"] = f"""
            -- Table {v}.
            -- migrate:up
            CREATE TABLE t_{v} (id INTEGER PRIMARY KEY, note_id INTEGER REFERENCES notes (id), v TEXT);
            INSERT INTO t_{v} (note_id, v) SELECT id, body FROM notes WHERE id % 4 = {v % 4};
            -- migrate:down
            DROP TABLE t_{v};
            """
    return files


def test_random_kills(tmp_path: Path):
    """SIGKILL at a random instant of a 200-migration upgrade (or downgrade, once at the
    head); then recover and check the invariants -- or, one time in three, let the next
    victim recover first (so that recovery itself can be killed).

    SCHEMALOG_SOAK=N kills (default 10); the RNG seed is printed (SCHEMALOG_SOAK_SEED=S
    replays it). The delay is counted from the driver's `ready` line.
    """
    seed = int(os.environ.get("SCHEMALOG_SOAK_SEED") or time.time_ns() % 1_000_000)
    print(f"random kills: seed {seed} (SCHEMALOG_SOAK_SEED={seed} to replay)")
    rng = random.Random(seed)
    world = World(tmp_path, files=soak_set())
    killed = finished = 0
    landed: dict[str, int] = {}  # last journal event before each kill -> count
    for i in range(SOAK_KILLS):
        version = world.migrator().replay().version
        args = ("upgrade",) if version < SOAK_MIGRATIONS else ("downgrade", "--to", "1")
        transaction = rng.choice(("run", "step"))
        delay = rng.uniform(0.0, SOAK_WINDOW_S)
        recover_now = rng.random() < 2 / 3 or i == SOAK_KILLS - 1
        where = f"seed {seed}, kill {i}: {args} transaction={transaction} delay={delay:.3f}s"
        with open(tmp_path / f"victim-{i}.err", "w") as err:
            proc = subprocess.Popen(
                world.command(*args, transaction=transaction),
                env=world.env(None),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", where
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        if proc.returncode == KILLED:
            killed += 1
            events = max(table_events(world.db), jsonl_events(world.db), key=len)
            last = events[-1].kind.value if events else "nothing"
            landed[last] = landed.get(last, 0) + 1
        else:
            text = (tmp_path / f"victim-{i}.err").read_text()[-2000:]
            assert proc.returncode == 0, f"{where}: exit {proc.returncode}: {text}"
            finished += 1
        if not recover_now:
            continue
        try:
            world.migrator().recover()
            check_invariants(world)
        except BaseException as exc:
            exc.add_note(where)
            raise
    print(f"random kills: {killed} killed mid-run, {finished} finished first; last event: {landed}")
    assert killed, f"seed {seed}: no kill landed during a run"
    world.migrator().upgrade()
    assert check_invariants(world).version == SOAK_MIGRATIONS

"""Databases with a long history: a journal of N events, in the shapes real runs write.

An application calls `schemalog up` at every start and ships new migrations for years; its
journal holds the events of many runs. `build_history(folder, migrations, events)` makes
such a database quickly:

1. `schemalog up` (the real CLI) applies every migration of `migrations` to a new, empty
   database (with the 200-file set of `grocy.py`: 406 events).
2. `warm` real up/down cycles through the CLI (`down --to HEAD-1`, then `up`): after a few
   of them the default retention starts to remove backups, so the last cycle is a steady
   state cycle — `run_started`, `lock_acquired`, `backup_taken`, the step pair,
   `backup_verified`, `backup_removed`, `run_finished`, `lock_released` for each run.
3. How the rest is written (`mode`):
   - `clone` (default): that last real cycle is repeated through the journal API
     (`schemalog.journal.journal.Journal.append_many`, which seals the events into the hash
     chain and writes them to both the table and the JSONL) until the journal holds about
     `events` events. Each copy gets new run ids, new backup ids, paths and creation times;
     each `backup_removed` removes the oldest backup still kept, as retention does; the
     backups that are still kept at the end have real files (copies of a real backup of
     the same version, with their real size and SHA-256 in the event).
   - `migrator`: real cycles in-process with the library (`Migrator.downgrade` /
     `upgrade`): the real thing, but it costs what two runs cost at every length of the
     journal (hours before issue 13's checkpoints; use it to check the clone mode).
4. `tail` real cycles through the CLI at the end, so that the newest events (and whatever
   schemalog writes at the end of a run, e.g. a checkpoint) come from schemalog itself.

The cloned history holds only the events a real cycle writes at the moment the clone is
taken; if a later schemalog writes more (a checkpoint every K events), the cloned part
lacks them and the tail cycles show what schemalog does with such a journal.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools import Schemalog, env_for_runs

__all__ = ["History", "build_history", "count_events"]

#: events appended per transaction while cloning
BATCH = 10_000


@dataclass(frozen=True)
class History:
    """A database with a long journal: where it is and how it was made."""

    database: Path
    migrations: Path
    events: int  # events in the journal now
    head: int  # the version it is at (every migration applied)
    cloned: int  # events written through the journal API
    cycle_events: int  # events one up/down cycle writes
    seconds: float  # time taken to build it
    mode: str

    def as_dict(self) -> dict:
        return {
            "database": str(self.database),
            "events": self.events,
            "head": self.head,
            "cloned": self.cloned,
            "cycle_events": self.cycle_events,
            "build_s": round(self.seconds, 1),
            "mode": self.mode,
        }


def count_events(db: Path) -> int:
    """Rows of `schemalog_journal` in `db` (0 when there is no journal). Reads only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM schemalog_journal").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _cli(migrations: Path, db: Path, *args: str, env: dict | None = None) -> None:
    """Run one schemalog command; raise RuntimeError with its output when it fails."""
    argv = [*Schemalog().base(migrations, db), *args]
    r = subprocess.run(
        argv,
        cwd=db.parent,
        env=env or env_for_runs(),
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        msg = f"`schemalog {' '.join(args)}` exited {r.returncode}: {' | '.join(tail)}"
        raise RuntimeError(msg)


def _real_cycle(migrations: Path, db: Path, head: int) -> None:
    _cli(migrations, db, "down", "--to", str(head - 1))
    _cli(migrations, db, "up")


def build_history(
    folder: Path,
    migrations: Path,
    events: int,
    *,
    mode: str = "clone",
    warm: int = 6,
    tail: int = 1,
    log: Callable[[str], None] = lambda _msg: None,
    max_seconds: float = 3600,
) -> History:
    """A new database in `folder` at the head of `migrations` with about `events` events.

    The folder is emptied first. With `events` at or below what the first `up` writes, no
    cycle is run. Raises RuntimeError when a schemalog command fails, and whatever the
    journal API raises when it has changed (the caller reports it as skipped).
    """
    t0 = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db = folder / "app.db"
    _cli(migrations, db, "up")
    head = _user_version(db)
    if count_events(db) >= events:
        n = count_events(db)
        return History(db, migrations, n, head, 0, 0, time.perf_counter() - t0, "first up")
    # Real cycles until retention removes backups, so that the last one is a steady-state
    # cycle (each run takes one backup and removes the oldest).
    cycle = 0
    for _ in range(max(1, warm)):
        before = count_events(db)
        _real_cycle(migrations, db, head)
        cycle = count_events(db) - before
    goal = events - tail * cycle
    cloned = 0
    if mode == "clone":
        cloned = _clone_cycles(db, goal, log)
    elif mode == "migrator":
        _migrator_cycles(db, migrations, head, goal, t0 + max_seconds, log)
    else:
        msg = f"unknown history mode {mode!r} (clone or migrator)"
        raise ValueError(msg)
    for _ in range(tail):
        _real_cycle(migrations, db, head)
    n = count_events(db)
    log(f"history: {n} events in {time.perf_counter() - t0:.1f}s ({mode}, {cloned} cloned)")
    return History(db, migrations, n, head, cloned, cycle, time.perf_counter() - t0, mode)


def _user_version(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _migrator_cycles(
    db: Path,
    migrations: Path,
    head: int,
    goal: int,
    deadline: float,
    log: Callable[[str], None],
) -> None:
    """Real up/down cycles in-process until the journal holds `goal` events (or time is up)."""
    from schemalog import Migrator
    from schemalog.engine.base.settings import Settings

    m = Migrator(Settings(database=db, migrations=migrations))
    n = count_events(db)
    while n < goal:
        if time.perf_counter() > deadline:
            log(f"history: time is up at {n} events (goal {goal})")
            return
        m.downgrade(head - 1)
        m.upgrade()
        n = count_events(db)


# --------------------------------------------------------------------------------------
# Cloning through the journal API


def _stamp(when: dt.datetime) -> tuple[str, str]:
    """(created_at, the id suffix) for a backup taken at `when`, as schemalog writes them."""
    created = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return created, when.strftime("%Y%m%dT%H%M%S.%fZ")


def _clone_cycles(db: Path, goal: int, log: Callable[[str], None]) -> int:
    """Append copies of the journal's last up/down cycle until it holds `goal` events.

    Returns the number of events appended.
    """
    from schemalog.journal.events import Draft, Kind
    from schemalog.journal.journal import Journal
    from schemalog.journal.jsonl import JsonlStore

    conn = sqlite3.connect(db, isolation_level=None)
    journal = Journal(conn, JsonlStore(Path(f"{db}.journal.jsonl")))
    try:
        events = journal.snapshot().table.events
        journal.continue_after(events)
        runs: list[str] = []
        for e in events:
            if not runs or runs[-1] != e.run_id:
                runs.append(e.run_id)
        # A checkpoint holds the state where it was written: a copy elsewhere would lie.
        template = [e for e in events if e.run_id in set(runs[-2:]) and e.kind != Kind.CHECKPOINT]
        alive = _alive_backups(events, Kind)
        stash = _stash(db, alive)
        per_cycle = len(template)
        cycles = max(0, (goal - len(events)) // per_cycle)
        drafts, taken, removed_real = _plan(template, alive, cycles, Draft, Kind)
        # The backups still kept at the end need files: a real backup of the same version.
        for data in (d for d in alive if d.get("clone")):
            src = stash[data["version"]]
            dest = _backup_path(db, data["path"])
            shutil.copyfile(src, dest)
            dest.chmod(0o600)  # as schemalog creates its backups
            data["size"] = src.stat().st_size
            data["sha256"] = _sha256(dest)
            taken[data["id"]]["size"] = data["size"]
            taken[data["id"]]["sha256"] = data["sha256"]
        for start in range(0, len(drafts), BATCH):
            journal.begin()
            journal.append_many(drafts[start : start + BATCH])
            journal.commit()
        journal.sync()
        for path in removed_real:  # retention deleted these files when it removed them
            _backup_path(db, path).unlink(missing_ok=True)
        for p in stash.values():
            p.unlink(missing_ok=True)
        log(f"history: cloned {cycles} cycles of {per_cycle} events")
        return len(drafts)
    finally:
        journal.close()
        conn.close()


def _alive_backups(events, kind) -> list[dict]:
    """The backups the journal still keeps, oldest first, as their `backup_taken` data."""
    kept: dict[str, dict] = {}
    for e in events:
        if e.kind == kind.BACKUP_TAKEN:
            kept[e.data["id"]] = dict(e.data)
        elif e.kind == kind.BACKUP_REMOVED:
            kept.pop(e.data.get("id"), None)
    return sorted(kept.values(), key=lambda d: (d["created_at"], d["id"]))


def _stash(db: Path, alive: list[dict]) -> dict[int, Path]:
    """One real backup file per version, copied aside (retention may delete the original)."""
    stash: dict[int, Path] = {}
    for data in alive:
        src = _backup_path(db, data["path"])
        if data["version"] not in stash and src.exists():
            dest = db.parent / f".stash-v{data['version']}.sqlite"
            shutil.copyfile(src, dest)
            stash[data["version"]] = dest
    return stash


def _plan(template, alive: list[dict], cycles: int, draft_cls, kind):
    """The drafts of `cycles` copies of `template`; `alive` is updated to what is kept after.

    Returns (drafts, {backup id: its backup_taken data}, paths of real backups removed).
    """
    drafts = []
    taken: dict[str, dict] = {}
    removed_real: list[str] = []
    clock = dt.datetime.now(dt.UTC)
    for _ in range(cycles):
        run_ids: dict[str, str] = {}
        backup_ids: dict[str, str] = {}
        for e in template:
            run_id = run_ids.setdefault(e.run_id, uuid.uuid4().hex[:12])
            data = copy.deepcopy(e.data)
            version = e.version
            if e.kind == kind.BACKUP_TAKEN:
                clock += dt.timedelta(microseconds=1)
                created, suffix = _stamp(clock)
                new_id = f"v{data['version']:04d}-{suffix}"
                old_path = Path(data["path"])
                data.update(
                    id=new_id, created_at=created, path=str(old_path.with_name(f"{new_id}.sqlite"))
                )
                backup_ids[e.data["id"]] = new_id
                taken[new_id] = data
                alive.append({**data, "clone": True})
            elif e.kind == kind.BACKUP_VERIFIED:
                data["id"] = backup_ids.get(data["id"], data["id"])
            elif e.kind == kind.BACKUP_REMOVED:
                oldest = alive.pop(0)
                data.update(id=oldest["id"], size=oldest["size"])
                version = oldest["version"]
                if not oldest.get("clone"):
                    removed_real.append(oldest["path"])
            drafts.append(draft_cls(run_id, kind(e.kind), version, data))
    return drafts, taken, removed_real


def _backup_path(db: Path, recorded: str) -> Path:
    """The file of a backup whose event records `recorded` (absolute, or in the backup dir)."""
    path = Path(recorded)
    return path if path.is_absolute() else Path(f"{db}.backups") / path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()

"""Reading: `status`, `history`, `replay` and `events` (`verify`: engine.commands.verify).
Every one is read-only.

None of them takes the migration lock, writes a file, runs recovery or executes migration
code: they report what recovery would do (`needs_recovery`, `recovery_actions`) and leave it
to the next writing command or to `schemalog recover`. `verify` runs the verify queries of
applied migrations as the files state them: a `.sql` file's verify section, a `.py` file's
literal `verify = [...]`; a `.py` file whose `verify` is computed is skipped, with a note.
`status` reads the journal from its last checkpoint; `history`, `replay`, `events` and
`verify` read it whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import DatabaseBusy, SchemalogError
from schemalog.engine.core.diagnosis import diagnose
from schemalog.engine.core.history import HistoryEntry, Running
from schemalog.engine.core.history import history as derive_history
from schemalog.engine.core.keying import sealing
from schemalog.engine.core.mend import journal_view
from schemalog.engine.core.plausibility import tampering_refusal
from schemalog.engine.core.schema import read_schema
from schemalog.engine.core.schema_diff import UNKNOWN, drift_diff
from schemalog.engine.files.registry import (
    check_pending,
    migration_names,
)
from schemalog.engine.shell.lock import LockStatus, probe
from schemalog.engine.shell.recovery import read_facts
from schemalog.engine.shell.session import Session
from schemalog.journal.consistency import compare
from schemalog.journal.events import Event
from schemalog.journal.journal import Snapshot
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import State
from schemalog.journal.replay import replay as replay_events

__all__ = [
    "Status",
    "events",
    "history",
    "lock_document",
    "replay",
    "safe_replay",
    "status",
    "unhealthy",
]

_READ_S = 5.0
_BUSY_READ_S = 0.2


@attrs.frozen
class Status:
    """The `status` document (`schemalog help cli status`)."""

    database: str
    exists: bool
    version: int
    user_version: int
    head: int
    pending: list[int]
    applied: list[dict[str, Any]]
    lock: dict[str, Any]
    needs_recovery: bool
    recovery_actions: list[str]
    drift: bool
    journal: dict[str, Any]
    last_backup: dict[str, Any] | None
    last_run: dict[str, Any] | None
    registry_error: str | None = None
    #: The run in progress (from the lock file: pid, run, command, what it is doing, since).
    running: dict[str, Any] | None = None
    #: "database", or "jsonl" when a run kept SQLite's lock and the JSONL alone was read.
    read_from: str = "database"
    #: With `drift`: what changed (the structured diff, and its one line), when the journal
    #: can tell the recorded schema object by object.
    drift_diff: list[dict[str, Any]] | None = None
    drift_detail: str | None = None


def unhealthy(st: Status) -> list[str]:
    """Why `status --exit-code` exits 1: pending migrations, a file error, drift, recovery."""
    reasons = []
    if st.pending:
        reasons.append(f"{len(st.pending)} migration(s) pending")
    if st.registry_error:
        reasons.append("the migration files have an error")
    if st.drift:
        reasons.append("the schema drifted")
    if st.needs_recovery:
        reasons.append("recovery is needed")
    return reasons


def lock_document(lock: LockStatus) -> dict[str, Any]:
    """The `lock` part of `status` and `lock status`: whether held, and by whom."""
    holder = attrs.asdict(lock.holder) if lock.holder is not None else None
    return {"held": lock.held, "holder": holder if lock.held else None, "last_holder": holder}


def status(ctx: Context) -> Status:
    """The state at a glance. Read-only: never writes, never takes the lock."""
    paths = ctx.settings.paths
    lock = probe(paths.lock)
    names, registry_error = _names_or_error(ctx)  # status reads no migration file
    head = max(names, default=0)
    if not paths.database.exists():
        return Status(
            database=str(paths.database),
            exists=False,
            version=0,
            user_version=0,
            head=head,
            pending=list(range(1, head + 1)),
            applied=[],
            lock=lock_document(lock),
            needs_recovery=False,
            recovery_actions=[],
            drift=False,
            journal={"table_events": 0, "jsonl_events": 0, "consistent": True},
            last_backup=None,
            last_run=None,
            registry_error=registry_error,
        )
    try:
        return _status_of_database(ctx, lock, head, registry_error)
    except DatabaseBusy:
        if not lock.held:
            raise
        return _status_while_running(ctx, lock, head, registry_error)


def _status_of_database(
    ctx: Context, lock: LockStatus, head: int, registry_error: str | None
) -> Status:
    paths = ctx.settings.paths
    with Session(ctx, command="status", write=False, busy_timeout=_wait(lock)) as session:
        snap = session.journal.recent()
        facts = read_facts(session.conn, integrity="off", paths=paths, events=snap.longest)
        plan = diagnose(snap, facts)
        state = plan.state or safe_replay(snap)
        actions = [a.detail for a in plan.actions]
        if plan.refusal is not None:
            actions.append(f"needs a human: {plan.refusal.message}")
        needs = plan.needed and not lock.held
        drift = state.fingerprint is not None and state.fingerprint != facts.fingerprint
        # What changed, from the schema the whole journal recorded (drift is rare).
        diff = (
            drift_diff(session.journal.snapshot().longest, read_schema(session.conn))
            if drift
            else None
        )
        pending = list(range(state.version + 1, head + 1))
        if registry_error is None and pending:  # their content, read without running code
            try:
                check_pending(ctx.settings.migrations, pending)
            except SchemalogError as exc:
                registry_error = exc.what
        return Status(
            database=str(paths.database),
            exists=True,
            version=state.version,
            user_version=facts.user_version,
            head=head,
            pending=pending,
            applied=_applied_documents(state),
            lock=lock_document(lock),
            needs_recovery=needs,
            recovery_actions=actions if needs else [],
            drift=drift,
            journal={
                "table_events": snap.table_count,
                "jsonl_events": snap.jsonl_count,
                "consistent": snap.consistency.consistent
                and snap.jsonl.torn is None
                and not snap.jsonl.damaged,
            },
            last_backup=attrs.asdict(state.backups[-1]) if state.backups else None,
            last_run=attrs.asdict(state.last_run) if state.last_run else None,
            registry_error=registry_error,
            running=_running(lock),
            drift_diff=diff.to_json() if diff is not None else None,
            drift_detail=(diff.text() if diff is not None else UNKNOWN) if drift else None,
        )


def _status_while_running(
    ctx: Context, lock: LockStatus, head: int, registry_error: str | None
) -> Status:
    """What a run in progress lets a reader see without waiting: every committed event (the
    JSONL holds them all) and the lock file's record of what the run is doing."""
    paths = ctx.settings.paths
    events = JsonlStore(paths.jsonl).read().events
    state = _safe_replay_events(events)
    return Status(
        database=str(paths.database),
        exists=True,
        version=state.version,
        user_version=_header_user_version(paths.database, state.version),
        head=head,
        pending=list(range(state.version + 1, head + 1)),
        applied=_applied_documents(state),
        lock=lock_document(lock),
        needs_recovery=False,
        recovery_actions=[],
        drift=False,
        journal={"table_events": None, "jsonl_events": len(events), "consistent": None},
        last_backup=attrs.asdict(state.backups[-1]) if state.backups else None,
        last_run=attrs.asdict(state.last_run) if state.last_run else None,
        registry_error=registry_error,
        running=_running(lock),
        read_from="jsonl",
    )


def _applied_documents(state: State) -> list[dict[str, Any]]:
    return [
        {"version": a.version, "name": a.name, "checksum": a.checksum, "applied_at": a.applied_at}
        for a in state.applied
    ]


def _wait(lock: LockStatus) -> float:
    """How long a reader lets SQLite wait for a writer: briefly while a run holds the lock."""
    return _BUSY_READ_S if lock.held else _READ_S


def _running(lock: LockStatus) -> dict[str, Any] | None:
    return attrs.asdict(lock.holder) if lock.held and lock.holder is not None else None


def _header_user_version(database: Path, default: int) -> int:
    """`user_version` from the database file's header (offset 60), read without SQLite."""
    try:
        with database.open("rb") as f:
            header = f.read(100)
    except OSError:
        return default
    if len(header) < 64 or not header.startswith(b"SQLite format 3\x00"):
        return default
    return int.from_bytes(header[60:64], "big", signed=True)


def _jsonl_events_while_running(ctx: Context) -> tuple[Event, ...]:
    """The events of the JSONL alone, when a run keeps SQLite's lock (tampering still refused)."""
    read = JsonlStore(ctx.settings.paths.jsonl).read()
    refusal = tampering_refusal(compare((), read.events))  # the JSONL's own chain
    if refusal is not None:
        raise refusal
    return read.events


def replay(ctx: Context, until: int | None = None) -> State:
    """The state the journal gives at seq `until` (default: now). Read-only.

    Raises the tampering refusal (exit 4) when the journals disagree or a chain is broken.
    """
    lock = probe(ctx.settings.paths.lock)
    try:
        with Session(ctx, command="replay", write=False, busy_timeout=_wait(lock)) as session:
            snap, refusal = journal_view(session.journal.snapshot())
            refusal = (
                refusal or tampering_refusal(snap.consistency) or sealing(snap, adopt=False)[1]
            )
            if refusal is not None:
                raise refusal
            return replay_events(snap.longest, until=until)
    except DatabaseBusy:
        if not lock.held:
            raise
        return replay_events(_jsonl_events_while_running(ctx), until=until)


def history(ctx: Context) -> list[HistoryEntry]:
    """Every attempt, oldest first, including failed and interrupted ones. Read-only."""
    state = replay(ctx)
    names, _ = _names_or_error(ctx)  # history stays readable without the files
    lock = probe(ctx.settings.paths.lock)
    running = None
    if lock.held and lock.holder is not None and lock.holder.doing_version is not None:
        h = lock.holder
        running = Running(h.run_id, h.doing_version, h.doing or "", h.doing_since or h.acquired_at)
    return derive_history(state, names=names, live=lock.held, running=running)


def events(ctx: Context) -> list[Event]:
    """Every event (the longer of the two journals). Read-only."""
    lock = probe(ctx.settings.paths.lock)
    try:
        with Session(ctx, command="events", write=False, busy_timeout=_wait(lock)) as session:
            return list(journal_view(session.journal.snapshot())[0].longest)
    except DatabaseBusy:
        if not lock.held:
            raise
        return list(_jsonl_events_while_running(ctx))


def _names_or_error(ctx: Context) -> tuple[dict[int, str], str | None]:
    try:
        return migration_names(ctx.settings.migrations), None
    except SchemalogError as exc:
        return {}, exc.what


def safe_replay(snap: Snapshot) -> State:
    """The snapshot's state; the empty state when its chain breaks (callers report that)."""
    return _safe_replay_events(snap.longest)


def _safe_replay_events(events: tuple[Event, ...]) -> State:
    try:
        return replay_events(events)
    except SchemalogError:  # a broken chain: callers report it from the consistency check
        return State()

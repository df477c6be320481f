"""Reading: `status`, `history`, `replay`, `events` and `verify`. Every one is read-only.

None of them takes the migration lock, writes a file, runs recovery or executes migration
code: they report what recovery would do (`needs_recovery`, `recovery_actions`) and leave it
to the next writing command or to `schemalog recover`. `verify` runs the verify queries of
applied migrations as the files state them: a `.sql` file's verify section, a `.py` file's
literal `verify = [...]`; a `.py` file whose `verify` is computed is skipped, with a note.
`status` reads the journal from its last checkpoint; `history`, `replay`, `events` and
`verify` read it whole.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs

from schemalog.engine.base.connection import integrity_problems
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import CheckFailed, SchemalogError
from schemalog.engine.core.diagnosis import diagnose, tampering_refusal
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.core.history import HistoryEntry
from schemalog.engine.core.history import history as derive_history
from schemalog.engine.files.registry import (
    Registry,
    check_against_journal,
    check_pending,
    load_registry,
    migration_names,
)
from schemalog.engine.shell.lock import LockStatus, probe
from schemalog.engine.shell.recovery import read_facts
from schemalog.engine.shell.session import Session
from schemalog.journal.checkpoint import mismatched_checkpoints
from schemalog.journal.events import Event
from schemalog.journal.journal import Snapshot
from schemalog.journal.replay import State
from schemalog.journal.replay import replay as replay_events

__all__ = ["Status", "events", "history", "lock_document", "replay", "status", "verify"]


@attrs.frozen
class Status:
    """The `status` document (see the contract in DESIGN.md)."""

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
    with Session(ctx, command="status", write=False) as session:
        snap = session.journal.recent()
        facts = read_facts(session.conn, integrity="off", paths=paths, events=snap.longest)
        plan = diagnose(snap, facts)
        state = plan.state or _safe_replay(snap)
        actions = [a.detail for a in plan.actions]
        if plan.refusal is not None:
            actions.append(f"needs a human: {plan.refusal.message}")
        needs = plan.needed and not lock.held
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
            applied=[
                {
                    "version": a.version,
                    "name": a.name,
                    "checksum": a.checksum,
                    "applied_at": a.applied_at,
                }
                for a in state.applied
            ],
            lock=lock_document(lock),
            needs_recovery=needs,
            recovery_actions=actions if needs else [],
            drift=state.fingerprint is not None and state.fingerprint != facts.fingerprint,
            journal={
                "table_events": snap.table_count,
                "jsonl_events": snap.jsonl_count,
                "consistent": snap.consistency.consistent and snap.jsonl.torn is None,
            },
            last_backup=attrs.asdict(state.backups[-1]) if state.backups else None,
            last_run=attrs.asdict(state.last_run) if state.last_run else None,
            registry_error=registry_error,
        )


def replay(ctx: Context, until: int | None = None) -> State:
    """The state the journal gives at seq `until` (default: now). Read-only.

    Raises the tampering refusal (exit 4) when the journals disagree or a chain is broken.
    """
    with Session(ctx, command="replay", write=False) as session:
        snap = session.journal.snapshot()
        refusal = tampering_refusal(snap.consistency)
        if refusal is not None:
            raise refusal
        return replay_events(snap.longest, until=until)


def history(ctx: Context) -> list[HistoryEntry]:
    """Every attempt, oldest first, including failed and interrupted ones. Read-only."""
    state = replay(ctx)
    names, _ = _names_or_error(ctx)  # history stays readable without the files
    return derive_history(state, names=names, live=probe(ctx.settings.paths.lock).held)


def events(ctx: Context) -> list[Event]:
    """Every event (the longer of the two journals). Read-only."""
    with Session(ctx, command="events", write=False) as session:
        return list(session.journal.snapshot().longest)


def verify(ctx: Context) -> list[dict[str, Any]]:
    """Check journals, integrity, foreign keys, schema and applied migrations. Read-only.

    Returns the list of checks `{check, ok, detail}`; raises the tampering refusal (exit 4,
    `checks` attached) when a past event was changed, and CheckFailed (exit 1, `checks`
    attached) when another check fails.
    """
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    with Session(ctx, command="verify", write=False) as session:
        conn = session.conn
        snap = session.journal.snapshot()
        cons = snap.consistency
        events_held = max(len(snap.table.events), len(snap.jsonl.events))
        check(
            "journal_chain",
            not cons.tampered,
            f"first break at seq {cons.first_break}" if cons.tampered else f"{events_held} events",
        )
        check(
            "journals_agree",
            cons.consistent and snap.jsonl.torn is None,
            ""
            if cons.consistent
            else f"table ahead by {len(cons.table_only)}, JSONL ahead by {len(cons.jsonl_only)}",
        )
        problems = integrity_problems(conn, "full", limit=5)
        check("integrity", not problems, "; ".join(problems) or "ok")
        fk = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
        check(
            "foreign_keys",
            not fk,
            f"{len(fk)}+ violation(s), first in table {fk[0][0]}" if fk else "ok",
        )
        wrong = [] if cons.tampered else mismatched_checkpoints(snap.longest)
        check(
            "checkpoints",
            not wrong,
            "; ".join(f"seq {seq}: {why}" for seq, why in wrong) or "match the events before them",
        )
        state = _safe_replay(snap)
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        check(
            "version",
            user_version == state.version,
            f"journal {state.version}, user_version {user_version}",
        )
        if state.fingerprint is not None:
            same = schema_fingerprint(conn) == state.fingerprint
            check(
                "schema", same, "matches the journal" if same else "schema drifted from the journal"
            )
        registry = _check_files(ctx, state, check)
        if registry is not None:
            _run_verify_queries(conn, registry, state, check)
    refusal = tampering_refusal(cons)
    if refusal is not None:
        refusal.checks = checks  # type: ignore[attr-defined]
        raise refusal
    failed = [c for c in checks if not c["ok"]]
    if failed:
        error = CheckFailed(
            f"verify found {len(failed)} problem(s): "
            + "; ".join(f"{c['check']}: {c['detail']}" for c in failed),
            state="nothing was changed",
            hint="see the recovery runbook for each check (`schemalog help recovery`)",
        )
        error.checks = checks  # type: ignore[attr-defined]
        raise error
    return checks


def _check_files(ctx: Context, state: State, check: Any) -> Registry | None:
    try:
        registry = load_registry(ctx.settings.migrations)
        check_against_journal(registry, state.applied_by_version, state.version)
    except SchemalogError as exc:
        check("migration_files", False, exc.what)
        return None
    check("migration_files", True, f"{len(registry)} file(s)")
    return registry


def _run_verify_queries(
    conn: sqlite3.Connection, registry: Registry, state: State, check: Any
) -> None:
    for applied in state.applied:
        mig = registry.get(applied.version)
        if mig is None:
            continue
        try:
            queries = registry.verify_queries(applied.version)
        except SchemalogError as exc:
            check(f"verify {mig.filename}", False, exc.what)
            continue
        if queries is None:
            check(
                f"verify {mig.filename}",
                True,
                "skipped: its `verify` is not a literal, and verify runs no migration code "
                "(`schemalog check` runs it)",
            )
            continue
        for position, query in enumerate(queries, start=1):
            try:
                rows = conn.execute(query).fetchmany(2)
                ok = len(rows) == 1 and bool(rows[0][0])
                detail = "ok" if ok else f"returned {rows!r}"
            except sqlite3.Error as exc:
                ok, detail = False, str(exc)
            check(f"verify {mig.filename} #{position}", ok, detail)


def _names_or_error(ctx: Context) -> tuple[dict[int, str], str | None]:
    try:
        return migration_names(ctx.settings.migrations), None
    except SchemalogError as exc:
        return {}, exc.what


def _safe_replay(snap: Snapshot) -> State:
    try:
        return replay_events(snap.longest)
    except SchemalogError:  # a broken chain: callers report it from the consistency check
        return State()

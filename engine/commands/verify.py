"""`verify`: every check of the database and its journals, read-only.

It reads the journal whole (not from the last checkpoint): both chains, both stores against
each other, every checkpoint against the events before it; then the database (integrity,
foreign keys, `user_version`, the schema against the journal's fingerprint), the migration
files against the journal, and the verify queries of applied migrations as the files state
them (a `.sql` file's verify section, a `.py` file's literal `verify = [...]`; a computed one
is skipped with a note: verify runs no migration code). It never takes the lock, writes or
runs recovery.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from schemalog.engine.base.connection import integrity_problems
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import CheckFailed, SchemalogError
from schemalog.engine.base.readonly import query_read_only
from schemalog.engine.commands.inspect import safe_replay
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.core.keying import sealing
from schemalog.engine.core.mend import journal_view
from schemalog.engine.core.plausibility import tampering_refusal
from schemalog.engine.core.schema import read_schema
from schemalog.engine.core.schema_diff import UNKNOWN, drift_diff
from schemalog.engine.files.registry import Registry, check_against_journal, load_registry
from schemalog.engine.shell.session import Session
from schemalog.journal.chain import keyed_since
from schemalog.journal.checkpoint import mismatched_checkpoints
from schemalog.journal.journal import Snapshot
from schemalog.journal.replay import State

__all__ = ["verify"]


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
        raw = session.journal.snapshot()
        snap, unvouched = journal_view(raw)  # a damaged JSONL: as recovery will mend it
        cons = snap.consistency
        if raw.jsonl.damaged:
            check("jsonl_damage", False, _damage_detail(raw, unvouched))
        unkeyed = sealing(snap, adopt=False)[1]
        if snap.key is not None:
            since = keyed_since(snap.longest)
            check(
                "journal_key",
                unkeyed is None,
                unkeyed.what if unkeyed else f"keyed from seq {since}",
            )
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
        state = safe_replay(snap)
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        check(
            "version",
            user_version == state.version,
            f"journal {state.version}, user_version {user_version}",
        )
        if state.fingerprint is not None:
            same = schema_fingerprint(conn) == state.fingerprint
            if same:
                check("schema", True, "matches the journal")
            else:
                diff = drift_diff(snap.longest, read_schema(conn))
                what = diff.text() if diff is not None else UNKNOWN
                check("schema", False, f"schema drifted from the journal: {what}")
                checks[-1]["diff"] = diff.to_json() if diff is not None else None
        registry = _check_files(ctx, state, check)
        if registry is not None:
            _run_verify_queries(conn, registry, state, check)
    refusal = unvouched or tampering_refusal(cons) or unkeyed
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


def _damage_detail(raw: Snapshot, unvouched: SchemalogError | None) -> str:
    lines = ", ".join(d.lines for d in raw.jsonl.damaged)
    then = (
        unvouched.what
        if unvouched is not None
        else "the journal table holds the events there: `schemalog recover` mends the JSONL"
    )
    return f"JSONL line(s) {lines} hold no event ({raw.jsonl.damaged[0].reason}); {then}"


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
                rows = query_read_only(conn, query)  # a verify query never writes
                ok = len(rows) == 1 and bool(rows[0][0])
                detail = "ok" if ok else f"returned {rows!r}"
            except sqlite3.Error as exc:
                ok, detail = False, str(exc)
            check(f"verify {mig.filename} #{position}", ok, detail)

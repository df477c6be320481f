"""How each result of a command reads on a terminal: one function per result.

Every function takes the `Out` to write to and the value a command function returned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.cli.output import STYLES, Out, holder_text, size_text, ts

if TYPE_CHECKING:  # annotations only: a command imports just what it runs (start-up time)
    from schemalog.engine.commands.check import CheckReport, MigrationCheck
    from schemalog.engine.commands.inspect import Status
    from schemalog.engine.commands.migrate import RunReport
    from schemalog.engine.core.diagnosis import RecoveryPlan
    from schemalog.engine.core.history import HistoryEntry
    from schemalog.engine.core.plan import Plan
    from schemalog.engine.shell.restore import RestoreResult
    from schemalog.journal.events import Event
    from schemalog.journal.replay import BackupRecord, State


def status(out: Out, st: Status) -> None:
    """The `status` document."""
    pairs: list[tuple[str, str, str | None]] = [("database", st.database, None)]
    if not st.exists:
        pairs.append(("version", "0 (the database does not exist yet; `up` creates it)", None))
    else:
        same = st.user_version == st.version
        pairs.append(
            (
                "version",
                f"{st.version}"
                + ("" if same else f" (but PRAGMA user_version is {st.user_version})"),
                None if same else "bold red",
            )
        )
    pairs.append(("head", f"{st.head} (newest migration on disk)", None))
    if st.pending:
        pairs.append(("pending", _versions(st.pending), "yellow"))
    else:
        pairs.append(("pending", "none", "green"))
    if st.registry_error:
        pairs.append(("migrations", st.registry_error, "bold red"))
    lock = st.lock
    if st.running:
        r = st.running
        doing = f"; now: {r['doing']} since {r['doing_since']}" if r.get("doing") else ""
        pairs.append(("lock", f"held by {holder_text(r)}, running {r['command']}{doing}", "yellow"))
    elif lock.get("held"):
        pairs.append(("lock", "held by " + holder_text(lock.get("holder")), "yellow"))
    else:
        pairs.append(("lock", "free", None))
    if st.read_from == "jsonl":
        pairs.append(("read from", "the JSONL (the run holds SQLite's lock; nothing waited)", None))
    if st.exists:
        j = st.journal
        if st.read_from == "database":
            pairs.append(
                (
                    "journal",
                    f"{max(j['table_events'], j['jsonl_events'])} events "
                    f"(table {j['table_events']}, JSONL {j['jsonl_events']}), "
                    + ("consistent" if j["consistent"] else "NOT consistent"),
                    None if j["consistent"] else "bold red",
                )
            )
        if st.drift:
            pairs.append(
                (
                    "drift",
                    f"the schema changed outside schemalog: {st.drift_detail}",
                    "bold red",
                )
            )
        if st.needs_recovery:
            refused = any(a.startswith("needs a human") for a in st.recovery_actions)
            who = (
                "recovery refuses to guess: follow its next step"
                if refused
                else "the next command or `schemalog recover` does it"
            )
            pairs.append(
                (
                    "recovery",
                    "needed: " + "; ".join(st.recovery_actions) + f" ({who})",
                    "bold red" if refused else "yellow",
                )
            )
        if st.last_run:
            r = st.last_run
            outcome = r.get("outcome") or "running or interrupted"
            text = f"{r.get('command')} {outcome} at {r.get('finished_at') or r.get('started_at')} (run {r.get('run_id')})"
            if r.get("error"):
                text += f": {r['error']}"
            pairs.append(("last run", text, STYLES.get(str(outcome))))
        if st.last_backup:
            b = st.last_backup
            pairs.append(
                (
                    "last backup",
                    f"{b['id']} (version {b['version']}, {size_text(b['size'])}"
                    + (", verified)" if b.get("verified") else ", NOT verified)"),
                    None,
                )
            )
    out.fields(pairs)
    if st.applied:
        out.line()
        out.table(
            ["version", "name", "applied at (UTC)", "checksum"],
            [
                (a["version"], a["name"], ts(a["applied_at"]), str(a["checksum"])[:12])
                for a in st.applied
            ],
            title="applied migrations",
        )


# -- runs ----------------------------------------------------------------------


def recovery_done(out: Out, plan: RecoveryPlan | None) -> None:
    """The repairs recovery made at the start of a command, if any."""
    if plan is None:
        return
    for action in plan.actions:
        out.line(f"recovered: {action.detail}", "yellow")


def run(out: Out, report: RunReport, database: str, paths: DatabasePaths | None = None) -> None:
    """What `up`/`down` did, or with a dry run what they would do."""
    if not report.dry_run:
        recovery_done(out, report.recovery)
    plan = report.plan
    if report.dry_run:
        if report.recovery is not None and report.recovery.actions:
            for action in report.recovery.actions:
                out.line(f"recovery would: {action.detail}", "yellow")
        dry_run_plan(out, plan)
        return
    if plan.empty:
        out.line(f"nothing to do: {database} is at version {plan.to_version}", "green")
        return
    if report.backup is not None:
        b = report.backup
        out.line(f"backup    {b.id} ({size_text(b.size)}) in {_where(b, paths)}")
    assert report.result is not None
    planned_by_version = {p.version: p for p in plan.steps}
    for step in report.result.steps:
        planned = planned_by_version.get(step.version)
        if planned is not None and planned.statements is None:
            what = "python function"
        else:
            what = f"{step.statements} statement{'' if step.statements == 1 else 's'}"
        filename = planned.migration.filename if planned is not None else str(step.version)
        out.line(
            f"{step.outcome:<9} {filename}  ({step.duration_ms} ms, {what})",
            STYLES.get(step.outcome),
        )
    out.line(
        f"{database}: version {plan.from_version} -> {plan.to_version}",
        "bold green",
    )


def dry_run_plan(out: Out, plan: Plan) -> None:
    """A plan with the exact statements of every step (dry run)."""
    count = len(plan.steps)
    if plan.empty:
        out.line(f"dry run: nothing to do, the database is at version {plan.to_version}")
        return
    out.line(
        f"dry run: {plan.direction} from version {plan.from_version} to {plan.to_version}, "
        f"{count} migration{'' if count == 1 else 's'}; nothing was changed",
        "bold",
    )
    for step in plan.steps:
        notes = []
        if not step.transactional:
            notes.append("not transactional: runs after a fresh backup")
        if not step.foreign_keys:
            notes.append("foreign keys off, checked before commit")
        if step.migration.verify and step.direction == "up":
            notes.append(
                f"{len(step.migration.verify)} verify quer{'y' if len(step.migration.verify) == 1 else 'ies'}"
            )
        suffix = f"  [{'; '.join(notes)}]" if notes else ""
        out.line()
        out.line(
            f"{step.direction} {step.migration.filename} -> version {step.target_version}{suffix}",
            "bold cyan",
        )
        if step.statements is None:
            out.line(f"    python function {step.direction}(conn)")
            continue
        for stmt in step.statements:
            for text in stmt.strip().splitlines():
                out.line(f"    {text}")


def history(out: Out, entries: Sequence[HistoryEntry]) -> None:
    """Every attempt, oldest first."""
    if not entries:
        out.line("no migration was attempted yet")
        return
    out.table(
        ["run", "version", "name", "dir", "outcome", "started (UTC)", "finished", "error"],
        [
            (
                e.run_id,
                e.version,
                e.name,
                e.direction,
                e.outcome,
                ts(e.started_at),
                _finished(e.started_at, e.finished_at),
                e.error
                or (
                    f"checksum {(e.old_checksum or '')[:12]} -> {(e.new_checksum or '')[:12]}: {e.reason}"
                    if e.direction == "repair"
                    else ""
                ),
            )
            for e in entries
        ],
        style_column=4,
    )


def replayed_state(out: Out, state: State, until: int | None) -> None:
    """A replayed state."""
    where = f"after event {state.seq}" if until is not None else f"now ({state.seq} events)"
    pairs: list[tuple[str, str]] = [
        ("replayed", where),
        ("version", str(state.version)),
        ("fingerprint", state.fingerprint or "-"),
        ("head hash", state.head_hash or "-"),
        (
            "lock",
            f"held by run {state.lock.run_id} (pid {state.lock.pid})" if state.lock else "free",
        ),
        ("backups", str(len(state.backups))),
    ]
    if state.open_attempts:
        pairs.append(
            (
                "open",
                ", ".join(
                    f"{a.direction} {a.version} (run {a.run_id})" for a in state.open_attempts
                ),
            )
        )
    if state.pending_restore:
        pairs.append(("restore", f"of {state.pending_restore.backup_id} not finished"))
    out.fields(pairs)
    if state.applied:
        out.line()
        out.table(
            ["version", "name", "applied at (UTC)", "run"],
            [
                (
                    a.version,
                    a.name,
                    ts(a.applied_at),
                    a.run_id + (" (baseline)" if a.baselined else ""),
                )
                for a in state.applied
            ],
            title="applied migrations",
        )


def event_table(out: Out, events: Sequence[Event]) -> None:
    """The raw events."""
    if not events:
        out.line("the journal is empty")
        return
    out.table(
        ["seq", "time (UTC)", "run", "kind", "version", "data"],
        [
            (
                e.seq,
                ts(e.ts),
                e.run_id,
                str(e.kind),
                "" if e.version is None else e.version,
                json.dumps(e.data, sort_keys=True, ensure_ascii=False),
            )
            for e in events
        ],
    )


def checks(out: Out, checks: Sequence[dict[str, Any]]) -> None:
    """The checks `verify` ran."""
    out.table(
        ["check", "result", "detail"],
        [(c["check"], "ok" if c["ok"] else "failed", c["detail"]) for c in checks],
        style_column=1,
    )


def failed_checks(out: Out, doc: dict[str, Any]) -> None:
    """`verify` when a check failed (the error line follows on stderr)."""
    if doc["checks"]:
        checks(out, doc["checks"])


def verified(out: Out, doc: dict[str, Any]) -> None:
    """`verify` when every check passed."""
    checks(out, doc["checks"])
    out.line(f"verify: all {len(doc['checks'])} checks passed", "bold green")


def recovery(out: Out, plan: RecoveryPlan, *, dry_run: bool) -> None:
    """What `recover` did or would do."""
    if not plan.actions:
        out.line("nothing to recover: the journals and the database agree", "green")
        return
    verb = "would" if dry_run else "did"
    for action in plan.actions:
        out.line(f"recovery {verb}: {action.detail}", "yellow")
    if plan.state is not None:
        out.line(f"journal version: {plan.state.version}")


# -- backups and lock -------------------------------------------------------------


def backups(out: Out, backups: Sequence[BackupRecord], paths: DatabasePaths | None = None) -> None:
    """The backups the journal knows, oldest first."""
    if not backups:
        out.line("no backups yet (every `up` and `down` takes one first)")
        return
    out.table(
        ["id", "version", "created (UTC)", "size", "verified", "path"],
        [
            (
                b.id,
                b.version,
                ts(b.created_at),
                size_text(b.size),
                "yes" if b.verified else "NO",
                _where(b, paths),
            )
            for b in backups
        ],
    )


def backup(out: Out, b: BackupRecord, paths: DatabasePaths | None = None) -> None:
    """One backup just taken."""
    out.line(
        f"backup {b.id}: version {b.version}, {size_text(b.size)}, "
        f"{'verified' if b.verified else 'NOT verified'}, in {_where(b, paths)}",
        "green",
    )


def restored(out: Out, result: RestoreResult) -> None:
    """What `backup restore` did: the backup now in place, what was discarded, where kept."""
    b = result.backup
    out.line(f"restored backup {b.id} (version {b.version}, taken {ts(b.created_at)})", "green")
    if result.discarded:
        rows = ", ".join(f"{t}: {n}" for t, n in result.discarded.items())
        out.line(
            f"discarded: rows the replaced database held beyond the backup ({rows}), written "
            f"since {ts(b.created_at)}",
            "yellow",
        )
    out.line(f"the replaced database is kept in {result.preserved} (byte for byte)")


def lock(out: Out, doc: dict[str, Any]) -> None:
    """The state of the migration lock."""
    if doc.get("held"):
        out.line("held by " + holder_text(doc.get("holder")), "yellow")
    elif doc.get("last_holder"):
        out.line("free (last holder, no longer running: " + holder_text(doc["last_holder"]) + ")")
    else:
        out.line("free")


# -- check ----------------------------------------------------------------------


def check_result(out: Out, result: MigrationCheck) -> None:
    """One migration's check, as it finishes."""
    steps = f" [{', '.join(result.steps)}]" if result.steps else ""
    detail = f": {result.detail}" if result.detail else ""
    out.line(
        f"  {result.outcome:<7} {result.filename}{steps}{detail}",
        STYLES.get(result.outcome),
    )


def check_header(out: Out, text: str) -> None:
    """The heading of one scratch pass."""
    out.line(text, "bold")


def check_summary(out: Out, reports: Sequence[CheckReport]) -> None:
    """The totals of a `check`."""
    results = [r for rep in reports for r in rep.results]
    failed = sum(r.outcome == "failed" for r in results)
    if not results:
        out.line("nothing to check: no migration is pending (use --all to test every one)")
    elif failed:
        out.line(f"check: {failed} of {len(results)} migration(s) failed", "bold red")
    else:
        out.line(f"check: {len(results)} migration(s) ok", "bold green")


def _where(b: BackupRecord, paths: DatabasePaths | None) -> str:
    """Where the backup file is now (the record holds its name in the backup directory)."""
    return str(paths.backup_file(b.path)) if paths is not None else b.path


def _finished(started: str, finished: str | None) -> str:
    """The finish time; only the time of day when it is the day the attempt started."""
    if not finished:
        return "-"
    start, end = ts(started), ts(finished)
    return end[11:] if end[:10] == start[:10] and len(end) == 19 else end


def _versions(versions: Sequence[int]) -> str:
    if len(versions) > 3 and versions[-1] - versions[0] == len(versions) - 1:
        return f"{len(versions)} ({versions[0]}-{versions[-1]})"
    return f"{len(versions)} ({', '.join(str(v) for v in versions)})"

"""Human output of the CLI: rich tables and colour on a terminal, plain text when piped.

Only the CLI uses this module, and only for human output: `--json` never imports it, and
rich itself is imported only when stdout is a terminal. `NO_COLOR` turns colour off
(rich honours it). Every function takes the value a `Migrator` method returned.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from schemalog.engine.commands.check import CheckReport, MigrationCheck
    from schemalog.engine.core.plan import Plan
    from schemalog.engine.migrator import HistoryEntry, RunReport, Status
    from schemalog.engine.shell.recovery import RecoveryPlan
    from schemalog.journal.events import Event
    from schemalog.journal.replay import BackupRecord, State

__all__ = ["Out"]

_STYLES = {
    "applied": "green",
    "reverted": "cyan",
    "ok": "green",
    "succeeded": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "running": "yellow",
    "skipped": "yellow",
}


_QUIET = ("", "ok", "applied", "reverted", "succeeded")


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def size_text(size: int | None) -> str:
    """`size` bytes as a short human-readable figure (1.5 MiB)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def ts(value: str | None) -> str:
    """An ISO-8601 UTC timestamp shortened for tables: `2024-05-01 10:00:00` (JSON keeps all)."""
    if not value:
        return "-"
    return value[:19].replace("T", " ") if len(value) >= 19 and value[10] == "T" else value


def holder_text(holder: dict[str, Any] | None) -> str:
    """A lock holder record as one phrase."""
    if not holder:
        return "an unknown process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} "
        f"(run {holder.get('run_id')}, {holder.get('command')}, since {holder.get('acquired_at')})"
    )


class Out:
    """Writes human output to stdout; rich on a terminal, aligned plain text otherwise."""

    def __init__(self, *, rich: bool | None = None) -> None:
        self.rich = _is_tty(sys.stdout) if rich is None else rich
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The rich console (imported on first use)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        return self._console

    # -- primitives ---------------------------------------------------------------

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text, styled on a terminal."""
        if self.rich:
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            click.echo(text)

    def fields(self, pairs: Sequence[tuple[str, str, str | None] | tuple[str, str]]) -> None:
        """A block of `key  value` lines (an optional third item is the value's style)."""
        width = max((len(p[0]) for p in pairs), default=0)
        if self.rich:
            from rich.table import Table
            from rich.text import Text

            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for pair in pairs:
                style = pair[2] if len(pair) > 2 else None
                grid.add_row(pair[0], Text(pair[1], style=style or ""))
            self.console.print(grid)
        else:
            for pair in pairs:
                click.echo(f"{pair[0]:<{width}}  {pair[1]}".rstrip())

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        style_column: int | None = None,
    ) -> None:
        """A table; in plain text, columns separated by two spaces and a header line."""
        cells = [["" if c is None else str(c) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], len(c))
        natural = sum(widths) + 3 * len(widths)  # rich pads each column
        if self.rich and natural <= self.console.width:
            self._rich_table(headers, cells, title, style_column)
            return
        # Piped, or too wide for the terminal: one line per row (a terminal wraps long
        # lines, but a row is never cut into columns of fragments).
        if title:
            self.line(title, "italic")

        def fmt_row(row: Sequence[str]) -> str:
            last = len(row) - 1
            return "  ".join(c if i == last else f"{c:<{widths[i]}}" for i, c in enumerate(row))

        self.line(fmt_row(list(headers)).rstrip(), "bold")
        for row in cells:
            outcome = row[style_column] if style_column is not None else ""
            # Whole rows are coloured only to flag trouble; success stays plain.
            self.line(fmt_row(row).rstrip(), None if outcome in _QUIET else _STYLES.get(outcome))

    def _rich_table(
        self,
        headers: Sequence[str],
        cells: list[list[str]],
        title: str | None,
        style_column: int | None,
    ) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for h in headers:
            table.add_column(h, no_wrap=True)
        for row in cells:
            table.add_row(
                *(
                    Text(c, style=_STYLES.get(c, "") if i == style_column else "")
                    for i, c in enumerate(row)
                )
            )
        self.console.print(table)

    # -- status --------------------------------------------------------------------

    def status(self, st: Status) -> None:
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
        if lock.get("held"):
            pairs.append(("lock", "held by " + holder_text(lock.get("holder")), "yellow"))
        else:
            pairs.append(("lock", "free", None))
        if st.exists:
            j = st.journal
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
                        "the schema changed outside schemalog (see `schemalog verify`)",
                        "bold red",
                    )
                )
            if st.needs_recovery:
                pairs.append(
                    (
                        "recovery",
                        "needed: "
                        + "; ".join(st.recovery_actions)
                        + " (the next command or `schemalog recover` does it)",
                        "yellow",
                    )
                )
            if st.last_run:
                r = st.last_run
                outcome = r.get("outcome") or "running or interrupted"
                text = f"{r.get('command')} {outcome} at {r.get('finished_at') or r.get('started_at')} (run {r.get('run_id')})"
                if r.get("error"):
                    text += f": {r['error']}"
                pairs.append(("last run", text, _STYLES.get(str(outcome))))
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
        self.fields(pairs)
        if st.applied:
            self.line()
            self.table(
                ["version", "name", "applied at (UTC)", "checksum"],
                [
                    (a["version"], a["name"], ts(a["applied_at"]), str(a["checksum"])[:12])
                    for a in st.applied
                ],
                title="applied migrations",
            )

    # -- runs ----------------------------------------------------------------------

    def recovery_done(self, plan: RecoveryPlan | None) -> None:
        """The repairs recovery made at the start of a command, if any."""
        if plan is None:
            return
        for action in plan.actions:
            self.line(f"recovered: {action.detail}", "yellow")

    def run(self, report: RunReport, database: str) -> None:
        """What `up`/`down` did, or with a dry run what they would do."""
        if not report.dry_run:
            self.recovery_done(report.recovery)
        plan = report.plan
        if report.dry_run:
            if report.recovery is not None and report.recovery.actions:
                for action in report.recovery.actions:
                    self.line(f"recovery would: {action.detail}", "yellow")
            self.plan(plan)
            return
        if plan.empty:
            self.line(f"nothing to do: {database} is at version {plan.to_version}", "green")
            return
        if report.backup is not None:
            b = report.backup
            self.line(f"backup    {b.id} ({size_text(b.size)}) in {b.path}")
        assert report.result is not None
        planned_by_version = {p.version: p for p in plan.steps}
        for step in report.result.steps:
            planned = planned_by_version.get(step.version)
            if planned is not None and planned.statements is None:
                what = "python function"
            else:
                what = f"{step.statements} statement{'' if step.statements == 1 else 's'}"
            filename = planned.migration.filename if planned is not None else str(step.version)
            self.line(
                f"{step.outcome:<9} {filename}  ({step.duration_ms} ms, {what})",
                _STYLES.get(step.outcome),
            )
        self.line(
            f"{database}: version {plan.from_version} -> {plan.to_version}",
            "bold green",
        )

    def plan(self, plan: Plan) -> None:
        """A plan with the exact statements of every step (dry run)."""
        count = len(plan.steps)
        if plan.empty:
            self.line(f"dry run: nothing to do, the database is at version {plan.to_version}")
            return
        self.line(
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
            self.line()
            self.line(
                f"{step.direction} {step.migration.filename} -> version {step.target_version}{suffix}",
                "bold cyan",
            )
            if step.statements is None:
                self.line(f"    python function {step.direction}(conn)")
                continue
            for stmt in step.statements:
                for text in stmt.strip().splitlines():
                    self.line(f"    {text}")

    def history(self, entries: Sequence[HistoryEntry]) -> None:
        """Every attempt, oldest first."""
        if not entries:
            self.line("no migration was attempted yet")
            return
        self.table(
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
                    e.error or "",
                )
                for e in entries
            ],
            style_column=4,
        )

    def state(self, state: State, until: int | None) -> None:
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
        self.fields(pairs)
        if state.applied:
            self.line()
            self.table(
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

    def events(self, events: Sequence[Event]) -> None:
        """The raw events."""
        if not events:
            self.line("the journal is empty")
            return
        self.table(
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

    def checks(self, checks: Sequence[dict[str, Any]]) -> None:
        """The checks `verify` ran."""
        self.table(
            ["check", "result", "detail"],
            [(c["check"], "ok" if c["ok"] else "failed", c["detail"]) for c in checks],
            style_column=1,
        )

    def recovery(self, plan: RecoveryPlan, *, dry_run: bool) -> None:
        """What `recover` did or would do."""
        if not plan.actions:
            self.line("nothing to recover: the journals and the database agree", "green")
            return
        verb = "would" if dry_run else "did"
        for action in plan.actions:
            self.line(f"recovery {verb}: {action.detail}", "yellow")
        if plan.state is not None:
            self.line(f"journal version: {plan.state.version}")

    # -- backups and lock -------------------------------------------------------------

    def backups(self, backups: Sequence[BackupRecord]) -> None:
        """The backups the journal knows, oldest first."""
        if not backups:
            self.line("no backups yet (every `up` and `down` takes one first)")
            return
        self.table(
            ["id", "version", "created (UTC)", "size", "verified", "path"],
            [
                (
                    b.id,
                    b.version,
                    ts(b.created_at),
                    size_text(b.size),
                    "yes" if b.verified else "NO",
                    b.path,
                )
                for b in backups
            ],
        )

    def backup(self, b: BackupRecord) -> None:
        """One backup just taken."""
        self.line(
            f"backup {b.id}: version {b.version}, {size_text(b.size)}, "
            f"{'verified' if b.verified else 'NOT verified'}, in {b.path}",
            "green",
        )

    def lock(self, doc: dict[str, Any]) -> None:
        """The state of the migration lock."""
        if doc.get("held"):
            self.line("held by " + holder_text(doc.get("holder")), "yellow")
        elif doc.get("holder"):
            self.line("free (last holder, no longer running: " + holder_text(doc["holder"]) + ")")
        else:
            self.line("free")

    # -- check ----------------------------------------------------------------------

    def check_result(self, result: MigrationCheck) -> None:
        """One migration's check, as it finishes."""
        steps = f" [{', '.join(result.steps)}]" if result.steps else ""
        detail = f": {result.detail}" if result.detail else ""
        self.line(
            f"  {result.outcome:<7} {result.filename}{steps}{detail}",
            _STYLES.get(result.outcome),
        )

    def check_header(self, text: str) -> None:
        """The heading of one scratch pass."""
        self.line(text, "bold")

    def check_summary(self, reports: Sequence[CheckReport]) -> None:
        """The totals of a `check`."""
        results = [r for rep in reports for r in rep.results]
        failed = sum(r.outcome == "failed" for r in results)
        if not results:
            self.line("nothing to check: no migration is pending (use --all to test every one)")
        elif failed:
            self.line(f"check: {failed} of {len(results)} migration(s) failed", "bold red")
        else:
            self.line(f"check: {len(results)} migration(s) ok", "bold green")


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

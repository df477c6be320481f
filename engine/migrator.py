"""The Python API: `Migrator`, one method per CLI command, usable at application start-up.

    from schemalog.engine.migrator import Migrator
    Migrator(database="app.db", migrations="migrations").upgrade()

Every writing method takes the migration lock, runs recovery, then plans — never
the other way round. Errors are `schemalog.engine.base.errors` classes; nothing is printed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from schemalog.engine.base.errors import (
    BackupNotFound,
    CheckFailed,
    DatabaseCorrupt,
    DriftDetected,
    LockHeld,
    SchemalogError,
    UsageError,
)
from schemalog.engine.base.settings import Settings, load_settings
from schemalog.engine.core.fingerprint import EMPTY_FINGERPRINT, schema_fingerprint
from schemalog.engine.files.registry import Registry, check_against_journal, load_registry
from schemalog.engine.shell.recovery import (
    RecoveryPlan,
    diagnose,
    read_facts,
    recover,
    tampering_refusal,
)
from schemalog.engine.shell.session import Connect, Session
from schemalog.journal.events import Kind
from schemalog.journal.replay import Attempt, BackupRecord, State, replay

if TYPE_CHECKING:
    from schemalog.engine.core.plan import Plan
    from schemalog.engine.shell.executor import RunResult

__all__ = ["HistoryEntry", "Migrator", "RunReport", "Status"]


@attrs.frozen
class RunReport:
    """What an `upgrade`/`downgrade` did (or, with `dry_run`, would do)."""

    plan: Plan
    dry_run: bool = False
    result: RunResult | None = None
    backup: BackupRecord | None = None
    recovery: RecoveryPlan | None = None
    run_id: str | None = None


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


@attrs.frozen
class HistoryEntry:
    """One attempt as `history` shows it."""

    run_id: str
    version: int
    name: str
    direction: str
    outcome: str
    started_at: str
    finished_at: str | None
    error: str | None


class Migrator:
    """Migrations, backups, recovery and inspection of one database."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        connect: Connect | None = None,
        on_lock_wait: Callable[[Any, float], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        **overrides: Any,
    ) -> None:
        """Use `settings`, or load them like the CLI does with `overrides` as flags.

        `connect` is an optional factory returning a new sqlite3 connection to the
        database (e.g. from the application's pool); schemalog switches it to
        autocommit mode. Raises ConfigError for bad settings.
        """
        if settings is None:
            settings = load_settings(flags=overrides, env=os.environ, cwd=Path.cwd())
        elif overrides:
            settings = attrs.evolve(settings, **overrides)
        self.settings = settings
        self.paths = settings.paths
        self._connect = connect
        self._on_lock_wait = on_lock_wait
        self._progress = progress

    # -- sessions ---------------------------------------------------------------

    def _session(self, command: str, *, write: bool, tolerate_damage: bool = False) -> Session:
        return Session(
            self.settings,
            command=command,
            write=write,
            tolerate_damage=tolerate_damage,
            connect=self._connect,
            on_lock_wait=self._on_lock_wait,
        )

    def _registry(self) -> Registry:
        return load_registry(self.settings.migrations)

    @staticmethod
    def _state(session: Session) -> State:
        assert session.journal is not None
        return replay(session.journal.snapshot().longest)

    # -- migrating --------------------------------------------------------------

    def upgrade(
        self, target: int | None = None, *, dry_run: bool = False, allow_drift: bool = False
    ) -> RunReport:
        """Apply pending migrations up to `target` (default: the newest).

        Raises MigrationFailed (a step failed and was rolled back), DriftDetected,
        RegistryError/MigrationFileError/UsageError (nothing ran), LockTimeout, NeedsHuman.
        """
        return self._migrate("up", target, dry_run=dry_run, allow_drift=allow_drift)

    def downgrade(
        self, target: int, *, dry_run: bool = False, allow_drift: bool = False
    ) -> RunReport:
        """Revert applied migrations newest first down to `target`, each verified.

        Raises NotReversible before anything runs if a migration on the way has no `down`.
        """
        return self._migrate("down", target, dry_run=dry_run, allow_drift=allow_drift)

    def _migrate(
        self, direction: str, target: int | None, *, dry_run: bool, allow_drift: bool
    ) -> RunReport:
        registry = self._registry()  # file errors surface before any lock or write
        if dry_run:
            return self._dry_run(registry, direction, target, allow_drift=allow_drift)
        with self._session(direction, write=True) as s:
            rec = recover(s)
            # Recovery already read both journals: when it changed nothing, its state holds.
            state = rec.state if rec.state is not None and not rec.actions else self._state(s)
            plan = self._plan(registry, state, direction, target)
            if plan.empty:
                return RunReport(plan=plan, recovery=rec, run_id=s.run_id)
            self._refuse_unmanaged(s, state)
            s.start_run(
                direction=direction, from_version=plan.from_version, to_version=plan.to_version
            )
            try:
                backup, result = self._run(s, state, plan, allow_drift=allow_drift)
            except BaseException as exc:
                if s.failed_backup is not None:  # its file is gone: say so in the journal
                    bad = s.failed_backup
                    s.record(Kind.BACKUP_REMOVED, bad.version, id=bad.id, reason="failed check")
                if s.run_open:
                    s.finish_run("failed", error=_one_line(exc))
                raise
            if result.error is not None:
                assert s.conn is not None
                now_version = s.conn.execute("PRAGMA user_version").fetchone()[0]
                s.finish_run("failed", error=result.error.what, version=now_version)
                raise result.error
            self._apply_retention(s, known=state.backups)
            s.finish_run("succeeded", version=plan.to_version)
            return RunReport(plan=plan, result=result, backup=backup, recovery=rec, run_id=s.run_id)

    def _dry_run(
        self, registry: Registry, direction: str, target: int | None, *, allow_drift: bool
    ) -> RunReport:
        """The plan a real run would execute now; reads only, takes no lock."""
        if not self.paths.database.exists():
            return RunReport(plan=self._plan(registry, State(), direction, target), dry_run=True)
        with self._session(direction, write=False) as s:
            assert s.journal is not None and s.conn is not None
            snap = s.journal.snapshot()
            rec = diagnose(snap, read_facts(s.conn, integrity="off"))
            if rec.refusal is not None:
                raise rec.refusal
            state = rec.state or State()
            plan = self._plan(registry, state, direction, target)
            if not plan.empty:
                # Refuse what the real run would refuse (without recording anything).
                self._refuse_unmanaged(s, state)
                live = schema_fingerprint(s.conn)
                if state.fingerprint is not None and live != state.fingerprint and not allow_drift:
                    raise self._drift_error()
            return RunReport(
                plan=plan,
                dry_run=True,
                recovery=rec,
                run_id=s.run_id,
            )

    @staticmethod
    def _plan(registry: Registry, state: State, direction: str, target: int | None) -> Plan:
        from schemalog.engine.core.plan import plan_down, plan_up

        check_against_journal(registry, state.applied_by_version, state.version)
        if direction == "up":
            return plan_up(registry, state, target)
        assert target is not None
        return plan_down(registry, state, target)

    def _refuse_unmanaged(self, s: Session, state: State) -> None:
        assert s.conn is not None
        if state.seq > 0:
            return
        user_version = s.conn.execute("PRAGMA user_version").fetchone()[0]
        if user_version != 0 or schema_fingerprint(s.conn) != EMPTY_FINGERPRINT:
            msg = (
                f"database {self.paths.database} already has a schema (user_version {user_version}) "
                "but no schemalog journal"
            )
            raise DriftDetected(
                msg,
                hint="adopt it with `schemalog baseline V` (V = the version its schema matches)",
            )

    def _run(
        self, s: Session, state: State, plan: Plan, *, allow_drift: bool
    ) -> tuple[BackupRecord, RunResult]:
        conn, journal = s.conn, s.journal
        assert conn is not None and journal is not None
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        self._check_drift(s, state, allow_drift=allow_drift)
        for _ in range(3):
            backup, wait = self._take_backup_deferred(s)
            try:
                journal.begin()
            except sqlite3.OperationalError as exc:
                raise s.database_locked(exc) from exc
            now_version = conn.execute("PRAGMA data_version").fetchone()[0]
            if now_version == data_version:
                break
            # Another connection committed after the backup started: the backup
            # could miss those rows, so take it again while writers are shut out. The
            # superseded one is still a sound backup of an earlier state: settle its check.
            journal.rollback()
            data_version = now_version
            self._settle_backup(s, backup, wait)
        else:
            msg = f"database {self.paths.database} kept changing while the backup was taken"
            raise LockHeld(
                msg, hint="stop the application's writers during the migration and retry"
            )
        from schemalog.engine.shell.executor import Executor

        executor = Executor(
            journal,
            s.run_id,
            per_step_commit=self.settings.transaction == "step",
            fresh_backup=lambda: self._take_backup(s),
            restore_backup=lambda rec: self._restore(
                s, rec, reason="failed non-transactional step"
            ),
            before_first_commit=lambda: self._confirm_backup(s, backup, wait),
            log=s.log,
        )
        return backup, executor.execute(plan)

    def _settle_backup(self, s: Session, backup: BackupRecord, wait: Callable[[], None]) -> None:
        """Finish the background check of a backup the run will not use (journaled)."""
        from schemalog.engine.base.errors import BackupVerificationFailed

        try:
            wait()
        except BackupVerificationFailed:
            s.record(Kind.BACKUP_REMOVED, backup.version, id=backup.id, reason="failed check")
            return
        self._mark_verified(s, backup)

    def _mark_verified(self, s: Session, backup: BackupRecord) -> None:
        """Record `backup_verified` for a backup whose background check passed."""
        if backup.verified or self.settings.integrity == "off":
            return
        s.record(Kind.BACKUP_VERIFIED, None, id=backup.id, backup_version=backup.version)
        # Retention must count it as verified (it never deletes the newest verified one).
        s.backups_taken = [
            attrs.evolve(b, verified=True) if b.id == backup.id else b for b in s.backups_taken
        ]

    def _confirm_backup(self, s: Session, backup: BackupRecord, wait: Callable[[], None]) -> None:
        """Wait for the background check of the run's backup; record `backup_verified`.

        Runs inside the run's transaction, before anything is committed: if the backup fails
        its check (BackupVerificationFailed, file deleted), the executor rolls the whole run
        back and nothing of it stays in the database.
        """
        from schemalog.engine.base.errors import BackupVerificationFailed

        try:
            wait()
        except BackupVerificationFailed:
            s.failed_backup = backup
            raise
        self._mark_verified(s, backup)

    def _check_drift(self, s: Session, state: State, *, allow_drift: bool) -> None:
        assert s.conn is not None
        if state.fingerprint is None:
            return
        live = schema_fingerprint(s.conn)
        if live == state.fingerprint:
            return
        s.record(
            Kind.DRIFT_DETECTED,
            state.version,
            expected=state.fingerprint,
            actual=live,
            allowed=allow_drift,
        )
        if not allow_drift:
            raise self._drift_error()

    def _drift_error(self) -> DriftDetected:
        msg = f"the schema of {self.paths.database} changed outside schemalog since the last recorded step"
        return DriftDetected(
            msg,
            hint="inspect the change (`schemalog verify`); re-run with --allow-drift to accept it",
        )

    def _backup_progress(self, done: int, total: int) -> None:
        from schemalog.journal import failpoints

        failpoints.hit("mid_backup")
        if self._progress is not None:
            self._progress(done, total)

    def _take_backup(self, s: Session) -> BackupRecord:
        """A verified backup now, journaled (`backup_taken`)."""
        from schemalog.engine.shell.backup import take_backup

        info = take_backup(
            self.paths.database,
            self.paths.backup_dir,
            run_id=s.run_id,
            compression=self.settings.compression,
            integrity=self.settings.integrity,
            progress=self._backup_progress,
        )
        return self._record_backup(s, info)

    def _take_backup_deferred(self, s: Session) -> tuple[BackupRecord, Callable[[], None]]:
        """The run's backup: copied and journaled now, its check still running (see
        `_confirm_backup`). Compressed backups are checked before they are journaled."""
        from schemalog.engine.shell.backup import take_backup_deferred

        if self.settings.compression != "none":
            return self._take_backup(s), lambda: None
        info, wait = take_backup_deferred(
            self.paths.database,
            self.paths.backup_dir,
            run_id=s.run_id,
            integrity=self.settings.integrity,
            progress=self._backup_progress,
        )
        return self._record_backup(s, info), wait

    def _record_backup(self, s: Session, info: Any) -> BackupRecord:
        data = {
            "id": info.id,
            "path": str(info.path),
            "version": info.version,
            "created_at": info.created_at,
            "size": info.size,
            "sha256": info.sha256,
            "verified": info.verified,
            "compression": info.compression,
        }
        s.record(Kind.BACKUP_TAKEN, info.version, **data)
        record = BackupRecord(run_id=s.run_id, **data)
        s.backups_taken.append(record)
        return record

    def _restore(self, s: Session, record: BackupRecord, *, reason: str) -> Path:
        from schemalog.engine.shell.restore import journaled_restore

        return journaled_restore(s, record, reason=reason, progress=self._progress)

    def _apply_retention(
        self, s: Session, *, known: tuple[BackupRecord, ...] | None = None
    ) -> list[BackupRecord]:
        """Remove backups beyond the budget (journaled). `known`: the backups known before
        this session's own (saves re-reading the journals); default: replay them."""
        from schemalog.engine.core.retention import plan_retention
        from schemalog.engine.shell.backup import remove_backup
        from schemalog.engine.shell.restore import info_from_record

        backups = self._state(s).backups if known is None else known + tuple(s.backups_taken)
        infos = [info_from_record(b) for b in backups]
        doomed = plan_retention(
            infos, keep=self.settings.retention_count, max_bytes=self.settings.retention_bytes
        )
        removed = []
        by_id = {b.id: b for b in backups}
        for info in doomed:
            s.record(
                Kind.BACKUP_REMOVED, info.version, id=info.id, reason="retention", size=info.size
            )
            remove_backup(info)
            removed.append(by_id[info.id])
        return removed

    # -- recovery and adoption --------------------------------------------------

    def recover(self, *, dry_run: bool = False) -> RecoveryPlan:
        """Reconcile journals and database after a crash; with `dry_run`, only say what it would do."""
        with self._session("recover", write=True) as s:
            return recover(s, force_integrity=True, dry_run=dry_run)

    def baseline(self, version: int) -> None:
        """Adopt an existing database as being at `version` without running migrations 1..version."""
        registry = self._registry()
        if version < 0 or version > registry.head:
            msg = f"baseline version {version} is not between 0 and the newest migration ({registry.head})"
            raise UsageError(msg, hint="pick the version whose schema the database matches")
        with self._session("baseline", write=True) as s:
            recover(s)
            state = self._state(s)
            if state.version > 0:
                msg = f"database is already managed by schemalog (version {state.version})"
                raise UsageError(
                    msg, hint="use `schemalog status`; baseline is for unmanaged databases"
                )
            assert s.conn is not None and s.journal is not None
            s.start_run(version=version)
            migs = [m for m in registry if m.version <= version]
            s.journal.begin()
            s.conn.execute(f"PRAGMA user_version = {int(version)}")
            s.record(
                Kind.BASELINE_SET,
                version,
                checksums={str(m.version): m.checksum for m in migs},
                names={str(m.version): m.name for m in migs},
                fingerprint=schema_fingerprint(s.conn),
            )
            s.journal.commit()
            s.finish_run("succeeded", version=version)

    # -- reading ----------------------------------------------------------------

    def status(self) -> Status:
        """The state at a glance. Read-only: never writes, never takes the lock."""
        from schemalog.engine.shell.lock import probe

        lock = probe(self.paths.lock)
        lock_doc = {
            "held": lock.held,
            "holder": attrs.asdict(lock.holder) if lock.holder and lock.held else None,
        }
        registry_error = None
        try:
            registry: Registry | None = self._registry()
        except SchemalogError as exc:
            registry, registry_error = None, exc.what
        head = registry.head if registry else 0
        if not self.paths.database.exists():
            return Status(
                database=str(self.paths.database),
                exists=False,
                version=0,
                user_version=0,
                head=head,
                pending=list(range(1, head + 1)),
                applied=[],
                lock=lock_doc,
                needs_recovery=False,
                recovery_actions=[],
                drift=False,
                journal={"table_events": 0, "jsonl_events": 0, "consistent": True},
                last_backup=None,
                last_run=None,
                registry_error=registry_error,
            )
        with self._session("status", write=False) as s:
            assert s.journal is not None and s.conn is not None
            snap = s.journal.snapshot()
            facts = read_facts(s.conn, integrity="off")
            plan = diagnose(snap, facts)
            state = plan.state or _safe_replay(snap)
            actions = [a.detail for a in plan.actions]
            if plan.refusal is not None:
                actions.append(plan.refusal.what)
            needs = plan.needed and not lock.held
            drift = state.fingerprint is not None and state.fingerprint != facts.fingerprint
            last_backup = state.backups[-1] if state.backups else None
            last_run = state.last_run
            return Status(
                database=str(self.paths.database),
                exists=True,
                version=state.version,
                user_version=facts.user_version,
                head=head,
                pending=[v for v in range(state.version + 1, head + 1)],
                applied=[
                    {
                        "version": a.version,
                        "name": a.name,
                        "checksum": a.checksum,
                        "applied_at": a.applied_at,
                    }
                    for a in state.applied
                ],
                lock=lock_doc,
                needs_recovery=needs,
                recovery_actions=actions if needs else [],
                drift=drift,
                journal={
                    "table_events": len(snap.table.events),
                    "jsonl_events": len(snap.jsonl.events),
                    "consistent": snap.consistency.consistent and snap.jsonl.torn is None,
                },
                last_backup=attrs.asdict(last_backup) if last_backup else None,
                last_run=attrs.asdict(last_run) if last_run else None,
                registry_error=registry_error,
            )

    def replay(self, until: int | None = None) -> State:
        """The state the journal gives at seq `until` (default: now). Read-only."""
        with self._session("replay", write=False) as s:
            assert s.journal is not None
            snap = s.journal.snapshot()
            refusal = tampering_refusal(snap.consistency)
            if refusal is not None:
                raise refusal
            return replay(snap.longest, until=until)

    def history(self) -> list[HistoryEntry]:
        """Every attempt, oldest first, including failed and interrupted ones. Read-only."""
        from schemalog.engine.shell.lock import probe

        state = self.replay()
        live = probe(self.paths.lock).held
        entries = [_history_entry(a, live) for a in state.attempts]
        # A run killed inside its transaction lost its uncommitted step events with it: it
        # is shown as one interrupted attempt at the step it had reached.
        try:
            names = {m.version: m.name for m in self._registry()}
        except SchemalogError:  # history must stay readable without the migration files
            names = {}
        by_run: dict[str, list[Attempt]] = {}
        for a in state.attempts:
            by_run.setdefault(a.run_id, []).append(a)
        for run in state.runs:
            stopped = run.outcome == "interrupted" or (run.outcome is None and not live)
            if not run.direction or not stopped:
                continue
            done = by_run.get(run.run_id, [])
            if any(a.outcome in (None, "interrupted", "failed") for a in done):
                continue  # the attempt that stopped the run is already listed
            if run.direction == "up":
                step = max([a.version for a in done] + [run.from_version or 0]) + 1
            else:
                step = min([a.version for a in done] + [(run.from_version or 0) + 1]) - 1
            entries.append(
                HistoryEntry(
                    run_id=run.run_id,
                    version=step,
                    name=names.get(step, ""),
                    direction=run.direction,
                    outcome="interrupted",
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    error=run.error,
                )
            )
        return sorted(entries, key=lambda h: h.started_at)

    def events(self) -> list[Any]:
        """Every event (the longer of the two journals). Read-only."""
        with self._session("events", write=False) as s:
            assert s.journal is not None
            return list(s.journal.snapshot().longest)

    # -- backups ------------------------------------------------------------------

    def backup_create(self) -> BackupRecord:
        """Take a verified backup now (journaled)."""
        with self._session("backup create", write=True) as s:
            recover(s)
            s.start_run()
            try:
                record = self._take_backup(s)
            except BaseException as exc:
                s.finish_run("failed", error=_one_line(exc))
                raise
            self._apply_retention(s)
            s.finish_run("succeeded")
            return record

    def backup_list(self) -> list[BackupRecord]:
        """Backups the journal knows, oldest first. Read-only."""
        if not self.paths.database.exists():
            return []
        try:
            return list(self.replay().backups)
        except DatabaseCorrupt:  # the database cannot be read: the JSONL still knows them
            from schemalog.journal.jsonl import JsonlStore

            return list(replay(JsonlStore(self.paths.jsonl).read().events).backups)

    def backup_restore(self, backup_id: str) -> Path:
        """Restore backup `backup_id`; the replaced database is preserved. Returns where."""
        from schemalog.engine.base.errors import IrreconcilableState
        from schemalog.engine.shell.recovery import salvage_journal

        with self._session("backup restore", write=True, tolerate_damage=True) as s:
            try:
                recover(s)
                state = self._state(s)
            except (IrreconcilableState, DatabaseCorrupt):
                # A restore is the way out these refusals point to: go on from the journals
                # as they are (the JSONL brought up to date), the table offline until the
                # restore replaces the database. Tampering is never bypassed.
                state = salvage_journal(s)
            record = state.backup_by_id.get(backup_id)
            if record is None:
                known = ", ".join(b.id for b in state.backups[-5:]) or "none"
                msg = f"no backup with id {backup_id!r}"
                raise BackupNotFound(msg, hint=f"see `schemalog backup list` (recent: {known})")
            s.start_run(backup_id=backup_id)
            try:
                preserved = self._restore(s, record, reason="requested")
            except BaseException as exc:
                s.finish_run("failed", error=_one_line(exc))
                raise
            s.finish_run("succeeded", preserved=str(preserved))
            return preserved

    def backup_prune(self) -> list[BackupRecord]:
        """Apply the retention budget now (journaled); returns the removed backups."""
        with self._session("backup prune", write=True) as s:
            recover(s)
            s.start_run()
            removed = self._apply_retention(s)
            s.finish_run("succeeded", removed=len(removed))
            return removed

    # -- the lock -----------------------------------------------------------------

    def lock_status(self) -> dict[str, Any]:
        """Whether the migration lock is held, and by whom. Read-only."""
        from schemalog.engine.shell.lock import probe

        st = probe(self.paths.lock)
        return {"held": st.held, "holder": attrs.asdict(st.holder) if st.holder else None}

    def lock_break(self) -> dict[str, Any] | None:
        """Close a dead holder's lock record (journaled); refuses while the holder lives."""
        from schemalog.engine.shell.lock import probe

        st = probe(self.paths.lock)
        if st.held:
            h = st.holder
            who = f"pid {h.pid} on {h.host}, run {h.run_id}" if h else "an unknown process"
            msg = f"the lock is held by a live process ({who})"
            raise LockHeld(msg, hint="wait for it to finish; schemalog never breaks a live lock")
        from schemalog.engine.shell.lock import break_lock

        stale = break_lock(self.paths.lock)  # clears the dead holder's record in the lock file
        with self._session("lock break", write=True) as s:
            recover(s)  # closes the dead holder's lock record in the journal (lock_released)
        return attrs.asdict(stale) if stale else None

    # -- verification --------------------------------------------------------------

    def verify(self) -> list[dict[str, Any]]:
        """Check journals, integrity, foreign keys, schema and applied migrations. Read-only.

        Returns the list of checks; raises JournalError/NeedsHuman (exit 4) on
        tampering and CheckFailed (exit 1) when another check fails.
        """
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, detail: str = "") -> None:
            checks.append({"check": name, "ok": ok, "detail": detail})

        with self._session("verify", write=False) as s:
            assert s.journal is not None and s.conn is not None
            snap = s.journal.snapshot()
            cons = snap.consistency
            check(
                "journal_chain",
                not cons.tampered,
                f"first break at seq {cons.first_break}"
                if cons.tampered
                else f"{max(len(snap.table.events), len(snap.jsonl.events))} events",
            )
            check(
                "journals_agree",
                cons.consistent and snap.jsonl.torn is None,
                ""
                if cons.consistent
                else f"table ahead by {len(cons.table_only)}, JSONL ahead by {len(cons.jsonl_only)}",
            )
            rows = s.conn.execute("PRAGMA integrity_check").fetchmany(5)
            check(
                "integrity",
                rows == [("ok",)],
                "; ".join(r[0] for r in rows) if rows != [("ok",)] else "ok",
            )
            fk = s.conn.execute("PRAGMA foreign_key_check").fetchmany(5)
            check(
                "foreign_keys",
                not fk,
                f"{len(fk)}+ violation(s), first in table {fk[0][0]}" if fk else "ok",
            )
            state = _safe_replay(snap)
            user_version = s.conn.execute("PRAGMA user_version").fetchone()[0]
            check(
                "version",
                user_version == state.version,
                f"journal {state.version}, user_version {user_version}",
            )
            live = schema_fingerprint(s.conn)
            if state.fingerprint is not None:
                check(
                    "schema",
                    live == state.fingerprint,
                    "matches the journal"
                    if live == state.fingerprint
                    else "schema drifted from the journal",
                )
            try:
                registry = self._registry()
                check_against_journal(registry, state.applied_by_version, state.version)
                check("migration_files", True, f"{len(registry)} file(s)")
            except SchemalogError as exc:
                registry = None
                check("migration_files", False, exc.what)
            if registry is not None:
                for applied in state.applied:
                    mig = registry.get(applied.version)
                    if mig is None:
                        continue
                    for position, query in enumerate(mig.verify, start=1):
                        try:
                            vrows = s.conn.execute(query).fetchmany(2)
                            ok = len(vrows) == 1 and bool(vrows[0][0])
                            detail = "ok" if ok else f"returned {vrows!r}"
                        except sqlite3.Error as exc:
                            ok, detail = False, str(exc)
                        check(f"verify {mig.filename} #{position}", ok, detail)
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
                hint="see docs/recovery.md for each check",
            )
            error.checks = checks  # type: ignore[attr-defined]
            raise error
        return checks


def _safe_replay(snap) -> State:
    try:
        return replay(snap.longest)
    except SchemalogError:  # a broken chain: callers report it from the consistency check
        return State()


def _history_entry(a: Attempt, live: bool) -> HistoryEntry:
    outcome = a.outcome or ("running" if live else "interrupted")
    return HistoryEntry(
        run_id=a.run_id,
        version=a.version,
        name=a.name,
        direction=a.direction,
        outcome=outcome,
        started_at=a.started_at,
        finished_at=a.finished_at,
        error=a.error,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SchemalogError):
        return exc.what
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]

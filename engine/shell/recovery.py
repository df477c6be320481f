"""Recovery: reconcile both journals and the database after any interruption.

`diagnose()` is pure: from what was read (both journals, database facts) it
decides a `RecoveryPlan` — a list of actions, or a refusal. `recover()` is the
imperative shell that reads, decides and applies. On a healthy database the
plan is empty and nothing is written. The rules, crash window by crash window,
are in docs/recovery.md.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from schemalog.engine.base.errors import DatabaseCorrupt, IrreconcilableState, NeedsHuman
from schemalog.engine.core.fingerprint import EMPTY_FINGERPRINT, schema_fingerprint
from schemalog.journal.chain import now
from schemalog.journal.consistency import Consistency, compare
from schemalog.journal.errors import JournalChainBroken, JournalsDiverged
from schemalog.journal.events import Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.replay import BackupRecord, State, replay
from schemalog.journal.store import ReadResult, TornTail

if TYPE_CHECKING:
    from schemalog.engine.shell.session import Session

__all__ = ["Action", "DatabaseFacts", "RecoveryPlan", "diagnose", "read_facts", "recover"]


@attrs.frozen
class DatabaseFacts:
    """What the database itself says, read without changing it."""

    user_version: int
    fingerprint: str
    integrity_ok: bool | None  # None: not checked


@attrs.frozen
class Action:
    """One repair: `kind` is one of the ACTION_* names; `detail` says what and why."""

    kind: str
    detail: str
    events: tuple[Event, ...] = ()
    torn: TornTail | None = None
    backup: BackupRecord | None = None
    run_id: str | None = None
    version: int | None = None
    direction: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)


REPAIR_TORN_TAIL = "repair_torn_tail"
MIRROR_TO_JSONL = "mirror_to_jsonl"
MIRROR_TO_TABLE = "mirror_to_table"
REDO_RESTORE = "redo_restore"
RESTORE_RUN_BACKUP = "restore_run_backup"
CLOSE_ATTEMPT = "close_attempt"
CLOSE_RUN = "close_run"
RELEASE_LOCK = "release_lock"
REMOVE_PARTIAL_BACKUP = "remove_partial_backup"


@attrs.frozen
class RecoveryPlan:
    """What recovery will do; `refusal` set means: change nothing, a human must look."""

    actions: tuple[Action, ...] = ()
    refusal: NeedsHuman | None = None
    state: State | None = None

    @property
    def needed(self) -> bool:
        """Whether anything is to be done or refused."""
        return bool(self.actions) or self.refusal is not None


def _refuse(error: NeedsHuman) -> RecoveryPlan:
    return RecoveryPlan(refusal=error)


def tampering_refusal(cons: Consistency) -> NeedsHuman | None:
    """The refusal for journals that disagree or a broken chain, or None. Pure."""
    if not cons.tampered:
        return None
    if cons.diverged_at is not None:
        return JournalsDiverged(
            f"the journal table and the JSONL differ at seq {cons.diverged_at}",
            hint="a past event was changed: compare them with `schemalog verify --json`",
        )
    where = "table" if cons.table_break else "JSONL"
    brk = cons.table_break or cons.jsonl_break
    return JournalChainBroken(
        f"the {where} journal's hash chain breaks at seq {cons.first_break}: "
        f"{brk.reason if brk else ''}",
        hint="a past event was changed or removed: see docs/recovery.md (tampering)",
    )


def diagnose(
    snapshot: Snapshot,
    facts: DatabaseFacts,
    *,
    current_run: str = "",
    partial_backups: tuple[str, ...] = (),
) -> RecoveryPlan:
    """Decide how to bring journals and database to a consistent state. Pure.

    Refuses (IrreconcilableState / JournalsDiverged / JournalChainBroken /
    DatabaseCorrupt) rather than guess when data could be lost.
    """
    cons = snapshot.consistency
    refusal = tampering_refusal(cons)
    if refusal is not None:
        return _refuse(refusal)

    actions: list[Action] = []
    if snapshot.jsonl.torn is not None:
        torn = snapshot.jsonl.torn
        actions.append(
            Action(
                REPAIR_TORN_TAIL, f"{len(torn.data)} bytes of an unfinished JSONL line", torn=torn
            )
        )
    if cons.table_only:
        actions.append(
            Action(
                MIRROR_TO_JSONL,
                f"{len(cons.table_only)} committed event(s) missing from the JSONL",
                events=cons.table_only,
            )
        )
    if cons.jsonl_only:
        actions.append(
            Action(
                MIRROR_TO_TABLE,
                f"{len(cons.jsonl_only)} event(s) missing from the journal table",
                events=cons.jsonl_only,
            )
        )
    events = snapshot.longest
    state = replay(events)

    expected_version = state.version
    if state.pending_restore is not None:
        record = state.backup_by_id.get(state.pending_restore.backup_id)
        if record is None:
            return _refuse(
                IrreconcilableState(
                    f"an interrupted restore names backup {state.pending_restore.backup_id}, "
                    "which the journal does not know",
                    hint="restore a backup by hand with `schemalog backup restore ID`",
                )
            )
        actions.append(
            Action(
                REDO_RESTORE,
                f"redo the interrupted restore of backup {record.id}",
                backup=record,
                data={"preserved": state.pending_restore.preserved},
            )
        )
        expected_version = record.version

    open_runs = [r for r in state.open_runs if r.run_id != current_run]
    open_attempts = [a for a in state.open_attempts if a.run_id != current_run]
    run_backup = _run_backup(state, {r.run_id for r in open_runs})
    nontx = [a for a in open_attempts if a.direction and _was_nontransactional(events, a)]
    damaged = facts.integrity_ok is False
    if (nontx or damaged) and state.pending_restore is None:
        if run_backup is None:
            if damaged:
                return _refuse(_corrupt(state))
        else:
            why = "a non-transactional step was interrupted" if nontx else "the database is damaged"
            actions.append(
                Action(
                    RESTORE_RUN_BACKUP,
                    f"{why}: restore the run's own backup {run_backup.id}",
                    backup=run_backup,
                )
            )
            expected_version = run_backup.version
    elif damaged:
        return _refuse(_corrupt(state))

    for attempt in open_attempts:
        actions.append(
            Action(
                CLOSE_ATTEMPT,
                f"attempt to {attempt.direction} version {attempt.version} by run {attempt.run_id} was interrupted",
                run_id=attempt.run_id,
                version=attempt.version,
                direction=attempt.direction,
            )
        )
    for run in open_runs:
        actions.append(
            Action(
                CLOSE_RUN, f"run {run.run_id} ({run.command}) was interrupted", run_id=run.run_id
            )
        )
    if state.lock is not None and state.lock.run_id != current_run:
        actions.append(
            Action(
                RELEASE_LOCK,
                f"lock record of dead run {state.lock.run_id} (pid {state.lock.pid})",
                run_id=state.lock.run_id,
            )
        )

    for name in partial_backups:
        actions.append(
            Action(
                REMOVE_PARTIAL_BACKUP,
                f"unfinished backup file {name} of an interrupted run",
                data={"path": name},
            )
        )

    restoring = any(a.kind in (REDO_RESTORE, RESTORE_RUN_BACKUP) for a in actions)
    if not restoring and facts.user_version != expected_version and events:
        return _refuse(
            IrreconcilableState(
                f"the journal says version {expected_version} but PRAGMA user_version is {facts.user_version}",
                hint="something outside schemalog changed the database; inspect it, then restore a "
                "backup: `schemalog backup list`, then `schemalog backup restore ID`",
            )
        )
    return RecoveryPlan(actions=tuple(actions), state=state)


def _was_nontransactional(events: tuple[Event, ...], attempt) -> bool:
    for e in reversed(events):
        if e.seq == attempt.started_seq:
            return e.data.get("transactional") is False
    return False


def _run_backup(state: State, runs: set[str]) -> BackupRecord | None:
    # Verified or not: the run's check may have been cut short with the run, and a restore
    # checks the backup's SHA-256 and integrity before it changes anything.
    candidates = [b for b in state.backups if b.run_id in runs]
    return candidates[-1] if candidates else None


def _corrupt(state: State) -> DatabaseCorrupt:
    verified = [b for b in state.backups if b.verified]
    if verified:
        newest = verified[-1]
        hint = (
            f"restore the newest verified backup {newest.id} (version {newest.version}, "
            f"taken {newest.created_at}) with `schemalog backup restore {newest.id}`"
        )
    else:
        hint = "no verified backup is known; copy the file aside and try `sqlite3 .recover`"
    return DatabaseCorrupt("the database failed its integrity check", hint=hint)


def corrupt_error(events: tuple[Event, ...], *, what: str) -> DatabaseCorrupt:
    """The refusal for a damaged database, naming the newest verified backup `events` know."""
    try:
        state = replay(events)
    except NeedsHuman:
        state = State()
    error = _corrupt(state)
    return DatabaseCorrupt(what, hint=error.hint)


def salvage_journal(session: Session) -> State:
    """Prepare a restore of a database recovery refused to touch; returns the journal's state.

    Saves a torn JSONL tail aside, copies into the JSONL every committed event only the
    table still holds (when the table is readable), continues the chain after the longer
    journal and takes the table offline: until the restore replaces the database, events go
    to the JSONL only. Tampering is never bypassed (raises the refusal).
    """
    journal = session.journal
    assert journal is not None
    jsonl = journal.jsonl.read()
    saved = None
    if jsonl.torn is not None:
        saved = _save_torn(session, jsonl.torn)
        jsonl = journal.jsonl.read()
    try:
        table = journal.table.read().events
    except (sqlite3.DatabaseError, NeedsHuman):
        table = ()
    snapshot = Snapshot(
        table=ReadResult(table), jsonl=jsonl, consistency=compare(table, jsonl.events)
    )
    refusal = tampering_refusal(snapshot.consistency)
    if refusal is not None:
        raise refusal
    if snapshot.consistency.table_only:
        journal.mirror_to_jsonl(snapshot.consistency.table_only)
    events = snapshot.longest
    journal.set_head(events)
    journal.table_offline = True
    if saved is not None:
        session.record(Kind.JOURNAL_REPAIRED, what="torn_tail", saved_to=str(saved))
    return replay(events)


def read_facts(conn: sqlite3.Connection, *, integrity: str) -> DatabaseFacts:
    """Read user_version, fingerprint and (unless `integrity` is "off") integrity. Read-only."""
    try:
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        fingerprint = schema_fingerprint(conn)
    except sqlite3.DatabaseError:
        return DatabaseFacts(user_version=-1, fingerprint=EMPTY_FINGERPRINT, integrity_ok=False)
    ok: bool | None = None
    if integrity != "off":
        pragma = "quick_check" if integrity == "quick" else "integrity_check"
        try:
            rows = conn.execute(f"PRAGMA {pragma}").fetchmany(2)
            ok = rows == [("ok",)]
        except sqlite3.DatabaseError:
            ok = False
    return DatabaseFacts(user_version=user_version, fingerprint=fingerprint, integrity_ok=ok)


def needs_integrity_check(snapshot: Snapshot) -> bool:
    """Whether the journal shows an interruption (then recovery checks integrity). Pure."""
    if snapshot.jsonl.torn is not None or not snapshot.consistency.consistent:
        return True
    events = snapshot.table.events or snapshot.jsonl.events
    if not events:
        return False
    last = events[-1]
    return last.kind not in (Kind.LOCK_RELEASED, Kind.RECOVERY_FINISHED, Kind.BACKUP_REMOVED)


def plan_recovery(
    session: Session, *, force_integrity: bool = False
) -> tuple[Snapshot, RecoveryPlan]:
    """Read everything and decide (no writes)."""
    assert session.journal is not None and session.conn is not None
    try:
        snapshot = session.journal.snapshot()
    except sqlite3.DatabaseError as exc:  # the journal table's pages are damaged
        events = session.journal.jsonl.read().events
        raise corrupt_error(events, what=f"the database cannot be read ({exc})") from exc
    check = force_integrity or needs_integrity_check(snapshot)
    facts = read_facts(session.conn, integrity=session.settings.integrity if check else "off")
    partial = tuple(sorted(str(p) for p in session.paths.backup_dir.glob("*.tmp")))
    return snapshot, diagnose(snapshot, facts, current_run=session.run_id, partial_backups=partial)


def recover(
    session: Session, *, force_integrity: bool = False, dry_run: bool = False
) -> RecoveryPlan:
    """Bring the session's database and journals to a consistent state.

    Raises the plan's refusal (exit 4) without changing anything. With
    `dry_run`, returns the plan without applying it. Requires the lock.
    """
    snapshot, plan = plan_recovery(session, force_integrity=force_integrity)
    if plan.refusal is not None:
        raise plan.refusal
    journal = session.journal
    assert journal is not None
    if dry_run or not plan.actions:
        journal.set_head(snapshot.longest)
        return plan
    from schemalog.engine.shell.restore import (
        journaled_restore,  # only recovery that restores pays the import
    )

    by_kind = {a.kind: a for a in plan.actions}
    saved_to = None
    if REPAIR_TORN_TAIL in by_kind:
        saved_to = _save_torn(session, by_kind[REPAIR_TORN_TAIL].torn)
    if MIRROR_TO_JSONL in by_kind:
        journal.mirror_to_jsonl(by_kind[MIRROR_TO_JSONL].events)
    if MIRROR_TO_TABLE in by_kind:
        journal.mirror_to_table(by_kind[MIRROR_TO_TABLE].events)
    journal.set_head(snapshot.longest)

    session.record(
        Kind.RECOVERY_STARTED,
        actions=[a.kind for a in plan.actions],
        details=[a.detail for a in plan.actions],
    )
    if saved_to is not None:
        session.record(
            Kind.JOURNAL_REPAIRED,
            what="torn_tail",
            bytes=len(by_kind[REPAIR_TORN_TAIL].torn.data),
            saved_to=str(saved_to),
        )
    for kind, what in (
        (MIRROR_TO_JSONL, "mirrored_to_jsonl"),
        (MIRROR_TO_TABLE, "mirrored_to_table"),
    ):
        if kind in by_kind:
            evs = by_kind[kind].events
            session.record(
                Kind.JOURNAL_REPAIRED,
                what=what,
                count=len(evs),
                first_seq=evs[0].seq,
                last_seq=evs[-1].seq,
            )
    for action in plan.actions:
        if action.kind == REDO_RESTORE:
            assert action.backup is not None
            journaled_restore(session, action.backup, reason="redo interrupted restore")
        elif action.kind == RESTORE_RUN_BACKUP:
            assert action.backup is not None
            journaled_restore(session, action.backup, reason=action.detail)
    for action in plan.actions:
        if action.kind == CLOSE_ATTEMPT:
            session.record(
                Kind.ATTEMPT_INTERRUPTED,
                action.version,
                run_id=action.run_id,
                direction=action.direction,
                run_interrupted=False,
            )
        elif action.kind == CLOSE_RUN:
            session.record(
                Kind.ATTEMPT_INTERRUPTED, None, run_id=action.run_id, run_interrupted=True
            )
        elif action.kind == REMOVE_PARTIAL_BACKUP:
            Path(action.data["path"]).unlink(missing_ok=True)
        elif action.kind == RELEASE_LOCK:
            session.record(
                Kind.LOCK_RELEASED, None, reason="holder died", holder_run_id=action.run_id
            )
    session.record(Kind.RECOVERY_FINISHED, actions=len(plan.actions))
    journal.sync()
    return plan


def _save_torn(session: Session, torn: TornTail | None) -> Any:
    assert torn is not None and session.journal is not None
    path = session.paths.jsonl
    saved = path.with_name(f"{path.name}.torn-{now().replace(':', '')}")
    with open(saved, "xb") as fh:
        fh.write(torn.data)
        fh.flush()
        os.fsync(fh.fileno())
    session.journal.jsonl.cut_torn_tail(torn)
    return saved

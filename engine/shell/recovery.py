"""Recovery: read both journals and the facts beside them, diagnose (pure), apply the plan.

Every writing command runs `recover` right after taking the lock; `schemalog recover` runs it
with a forced integrity check. On a healthy database the plan is empty and nothing is
written. What each action does, and why it is safe, is in `engine.core.diagnosis` and the
recovery runbook.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from schemalog.engine.base.connection import IntegrityLevel, integrity_problems
from schemalog.engine.base.errors import NeedsHuman
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.core import diagnosis as dx
from schemalog.engine.core.diagnosis import DatabaseFacts, RecoveryPlan, corrupt_error, diagnose
from schemalog.engine.core.fingerprint import EMPTY_FINGERPRINT, schema_fingerprint
from schemalog.engine.core.mend import journal_view, mend_jsonl
from schemalog.engine.core.plausibility import tampering_refusal
from schemalog.engine.shell.backup_file import partial_backups
from schemalog.engine.shell.preserve import read_manifest
from schemalog.engine.shell.restore import Restorer, journaled_restore
from schemalog.journal.clock import now
from schemalog.journal.consistency import compare
from schemalog.journal.durable import read_nofollow, write_private_file
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Journal, Snapshot
from schemalog.journal.replay import State, replay
from schemalog.journal.store import ReadResult, TornTail

__all__ = ["Recovering", "plan_recovery", "read_facts", "recover", "salvage_journal"]


class Recovering(Restorer, Protocol):
    """What recovery needs from a session: a restorer with its connection and run id."""

    @property
    def conn(self) -> sqlite3.Connection: ...

    @property
    def run_id(self) -> str: ...


def read_facts(
    conn: sqlite3.Connection,
    *,
    integrity: IntegrityLevel,
    paths: DatabasePaths | None = None,
    events: tuple[Event, ...] = (),
    fingerprint: bool = True,
) -> DatabaseFacts:
    """Read user_version, the schema fingerprint (unless `fingerprint` is False: then
    `DatabaseFacts.fingerprint` is None), integrity (unless "off") and the files beside the
    database: unfinished backups and the manifest of a pending restore's preserved copy.

    Read-only.
    """
    partial: tuple[str, ...] = ()
    preserved_for = None
    if paths is not None:
        partial = tuple(str(p) for p in partial_backups(paths.backup_dir))
        preserved = _pending_preservation(events)
        if preserved is not None:
            manifest = read_manifest(Path(preserved))
            if manifest is not None:
                preserved_for = str(manifest.get("restoring_backup", "")) or None
    try:
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        schema = schema_fingerprint(conn) if fingerprint else None
    except sqlite3.DatabaseError:
        return DatabaseFacts(
            user_version=-1,
            fingerprint=EMPTY_FINGERPRINT,
            integrity_ok=False,
            partial_backups=partial,
            preserved_for=preserved_for,
        )
    ok: bool | None = None
    if integrity != "off":
        try:
            ok = not integrity_problems(conn, integrity, limit=1)
        except sqlite3.DatabaseError:
            ok = False
    return DatabaseFacts(
        user_version=user_version,
        fingerprint=schema,
        integrity_ok=ok,
        partial_backups=partial,
        preserved_for=preserved_for,
    )


def plan_recovery(
    session: Recovering, *, force_integrity: bool = False, adopt_key: bool = False
) -> tuple[Snapshot, RecoveryPlan]:
    """Read everything and decide (no writes); `adopt_key`: seal a plain journal with the
    configured journal key (only `schemalog recover` asks)."""
    journal = session.journal
    try:
        snapshot = journal.recent()
    except sqlite3.DatabaseError as exc:  # the journal table's pages are damaged
        events = journal.jsonl.read().events
        raise corrupt_error(events, what=f"the database cannot be read ({exc})") from exc
    state = _replayed(journal, snapshot)
    check = force_integrity or dx.needs_integrity_check(snapshot)
    facts = read_facts(
        session.conn,
        integrity=session.integrity if check else "off",
        paths=session.paths,
        events=journal_view(snapshot)[0].longest,
        # The schema's fingerprint matters to recovery only for an interrupted step.
        fingerprint=state is None or bool(state.open_attempts),
    )
    return snapshot, diagnose(
        snapshot, facts, current_run=session.run_id, state=state, adopt_key=adopt_key
    )


def _replayed(journal: Journal, snapshot: Snapshot) -> State | None:
    """The snapshot's state (the memo's when it has it), or None when it cannot be replayed
    or the JSONL needs mending first (diagnosis replays the mended journal)."""
    if snapshot.consistency.tampered or snapshot.jsonl.damaged:
        return None
    try:
        if journal.memo is not None:
            return journal.memo.state(snapshot)
        return replay(snapshot.longest)
    except NeedsHuman:
        return None


def recover(
    session: Recovering,
    *,
    force_integrity: bool = False,
    dry_run: bool = False,
    adopt_key: bool = False,
) -> RecoveryPlan:
    """Bring the session's database and journals to a consistent state.

    Raises the plan's refusal (exit 4) without changing anything. With `dry_run`, returns the
    plan without applying it. With `adopt_key`, a journal started without a key is sealed with
    the configured one from the next event on. Requires the lock.
    """
    snapshot, plan = plan_recovery(session, force_integrity=force_integrity, adopt_key=adopt_key)
    if plan.refusal is not None:
        raise plan.refusal
    snapshot = plan.snapshot or snapshot  # a damaged JSONL: as it is once mended
    journal = session.journal
    if dry_run or not plan.actions:
        journal.continue_after(snapshot.longest)
        return plan
    if plan.restores:
        # Nothing is written into a database that is about to be replaced: until the restore
        # is done, events go to the JSONL only, and the restored table catches up from it.
        journal.take_table_offline()
    by_kind = {a.kind: a for a in plan.actions}
    repaired = _repair_jsonl(session, by_kind)
    if dx.MIRROR_TO_JSONL in by_kind:
        journal.mirror_to_jsonl(by_kind[dx.MIRROR_TO_JSONL].events)
    if dx.MIRROR_TO_TABLE in by_kind and not journal.table_offline:
        journal.mirror_to_table(by_kind[dx.MIRROR_TO_TABLE].events)
    journal.continue_after(snapshot.longest)

    session.record(
        Kind.RECOVERY_STARTED,
        actions=[a.kind for a in plan.actions],
        details=[a.detail for a in plan.actions],
    )
    if repaired is not None:
        session.record(Kind.JOURNAL_REPAIRED, **repaired)
    for kind, what in (
        (dx.MIRROR_TO_JSONL, "mirrored_to_jsonl"),
        (dx.MIRROR_TO_TABLE, "mirrored_to_table"),
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
    _apply_restores(session, plan)
    _close_what_was_interrupted(session, plan)
    session.record(Kind.RECOVERY_FINISHED, actions=len(plan.actions))
    journal.sync()
    return plan


def _repair_jsonl(session: Recovering, by_kind: dict[str, dx.Action]) -> dict[str, Any] | None:
    """Cut a torn or damaged tail, or rewrite a JSONL damaged before an event from the table
    (the damaged file kept aside first); the payload of the `journal_repaired` to record."""
    if dx.REWRITE_JSONL in by_kind:
        action = by_kind[dx.REWRITE_JSONL]
        saved = keep_damaged(session)
        session.journal.jsonl.rewrite(action.events)
        return {**action.data, "saved_to": str(saved)}
    if dx.REPAIR_TORN_TAIL in by_kind:
        action = by_kind[dx.REPAIR_TORN_TAIL]
        assert action.torn is not None
        saved = save_torn(session, action.torn)
        return {
            "what": "torn_tail",
            **action.data,
            "bytes": len(action.torn.data),
            "saved_to": str(saved),
        }
    return None


def _apply_restores(session: Recovering, plan: RecoveryPlan) -> None:
    for action in plan.actions:
        if action.kind == dx.REDO_RESTORE:
            assert action.backup is not None
            journaled_restore(session, action.backup, reason="redo interrupted restore")
        elif action.kind == dx.RESTORE_RUN_BACKUP:
            assert action.backup is not None
            journaled_restore(session, action.backup, reason=action.detail)
        elif action.kind == dx.CLOSE_RESTORE:
            session.record(
                Kind.RESTORE_FAILED,
                None,
                backup_id=action.data["backup_id"],
                error=action.detail,
                state="the database was not changed",
                run_id=action.run_id,
            )


def _close_what_was_interrupted(session: Recovering, plan: RecoveryPlan) -> None:
    for action in plan.actions:
        if action.kind == dx.FINISH_STEP:
            kind = Kind.STEP_APPLIED if action.direction == "up" else Kind.STEP_REVERTED
            session.journal.append(
                Draft(
                    str(action.run_id),
                    kind,
                    action.version,
                    {
                        "direction": action.direction,
                        "recovered": True,
                        "statements": None,
                        "fingerprint_before": None,
                        **action.data,
                    },
                )
            )
        elif action.kind == dx.CLOSE_ATTEMPT:
            session.record(
                Kind.ATTEMPT_INTERRUPTED,
                action.version,
                run_id=action.run_id,
                direction=action.direction,
                run_interrupted=False,
            )
        elif action.kind == dx.CLOSE_RUN:
            session.record(
                Kind.ATTEMPT_INTERRUPTED, None, run_id=action.run_id, run_interrupted=True
            )
        elif action.kind == dx.REMOVE_PARTIAL_BACKUP:
            Path(action.data["path"]).unlink(missing_ok=True)
        elif action.kind == dx.RELEASE_LOCK:
            session.record(
                Kind.LOCK_RELEASED, None, reason="holder died", holder_run_id=action.run_id
            )


def salvage_journal(session: Recovering) -> State:
    """Prepare a restore of a database recovery refused to touch; returns the journal's state.

    Saves a torn JSONL tail aside, copies into the JSONL every committed event only the
    table still holds (when the table is readable), continues the chain after the longer
    journal and takes the table offline: until the restore replaces the database, events go
    to the JSONL only. Tampering is never bypassed (raises the refusal).
    """
    journal = session.journal
    jsonl = journal.jsonl.read()
    try:
        table = journal.table.read().events
    except (sqlite3.DatabaseError, NeedsHuman):
        table = ()
    snapshot = Snapshot(
        table=ReadResult(table),
        jsonl=jsonl,
        consistency=compare(table, jsonl.events, key=journal.key),
        key=journal.key,
    )
    mend = mend_jsonl(snapshot)
    if isinstance(mend, NeedsHuman):
        raise mend
    snapshot = mend.snapshot if mend is not None else snapshot
    refusal = tampering_refusal(snapshot.consistency)
    if refusal is not None:
        raise refusal
    repaired = _repair_jsonl(session, {a.kind: a for a in dx.mend_actions(snapshot, mend)})
    if snapshot.consistency.table_only:
        journal.mirror_to_jsonl(snapshot.consistency.table_only)
    events = snapshot.longest
    journal.continue_after(events)
    journal.take_table_offline()
    if repaired is not None:
        session.record(Kind.JOURNAL_REPAIRED, **repaired)
    return replay(events)


def save_torn(session: Recovering, torn: TornTail | None) -> Path:
    """Keep the torn tail of the JSONL aside (a new 0600 file), then cut it from the JSONL."""
    assert torn is not None
    path = session.paths.jsonl
    saved = path.with_name(f"{path.name}.torn-{now().replace(':', '')}")
    write_private_file(saved, torn.data)
    session.journal.jsonl.cut_torn_tail(torn)
    return saved


def keep_damaged(session: Recovering) -> Path:
    """Keep the whole damaged JSONL aside, byte for byte (a new 0600 file), before it is
    rewritten; returns where."""
    path = session.paths.jsonl
    saved = path.with_name(f"{path.name}.damaged-{now().replace(':', '')}")
    write_private_file(saved, read_nofollow(path))
    return saved


def _pending_preservation(events: tuple[Event, ...]) -> str | None:
    """Where the pending restore (if any) preserves the database, from its `restore_started`."""
    for e in reversed(events):
        if e.kind in (Kind.BACKUP_RESTORED, Kind.RESTORE_FAILED):
            return None
        if e.kind is Kind.RESTORE_STARTED:
            preserved = e.data.get("preserved")
            return str(preserved) if preserved else None
    return None

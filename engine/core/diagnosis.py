"""Diagnosis: how to bring both journals and the database back to a consistent state. Pure.

`diagnose(snapshot, facts)` decides, from what was read (both journals, facts about the
database and the files beside it), a `RecoveryPlan`: a list of actions, or a refusal. The
shell (`engine.shell.recovery`) reads the facts and applies the plan. On a healthy database
the plan is empty. The rules, crash window by crash window, are in the recovery runbook
(`schemalog help recovery`).

Two rules keep a forged or stray journal line from doing harm (invariant 11): events present
only in the JSONL are copied into the table only when they are a plausible tail — events a
command writes outside a transaction (`engine.core.plausibility`) — and a destructive action needs corroboration from
the files it describes: an interrupted restore is redone only when its preserved copy's
manifest names that backup, and a run's backup is restored only when the database itself
fails its integrity check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from schemalog.engine.base.errors import DatabaseCorrupt, IrreconcilableState, NeedsHuman
from schemalog.engine.core.keying import SEAL_WITH_KEY, sealing
from schemalog.engine.core.mend import JsonlMend, mend_jsonl
from schemalog.engine.core.plausibility import (
    forged_checkpoint,
    implausible_tail,
    tampering_refusal,
)
from schemalog.journal.errors import JournalsDiverged
from schemalog.journal.events import Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.replay import BackupRecord, State, replay
from schemalog.journal.store import TornTail

__all__ = [
    "Action",
    "DatabaseFacts",
    "RecoveryPlan",
    "corrupt_error",
    "diagnose",
    "mend_actions",
    "needs_integrity_check",
]


@attrs.frozen
class DatabaseFacts:
    """What the database and the files beside it say, read without changing anything."""

    user_version: int
    fingerprint: str | None  # None: not read (recovery needs it only for an interrupted step)
    integrity_ok: bool | None  # None: not checked
    partial_backups: tuple[str, ...] = ()  # unfinished `*.tmp` backup files
    #: The backup id named by the manifest of the pending restore's preservation directory
    #: (None: no pending restore, or no finished manifest there).
    preserved_for: str | None = None


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
REWRITE_JSONL = "rewrite_jsonl"
MIRROR_TO_JSONL = "mirror_to_jsonl"
MIRROR_TO_TABLE = "mirror_to_table"
REDO_RESTORE = "redo_restore"
CLOSE_RESTORE = "close_restore"
RESTORE_RUN_BACKUP = "restore_run_backup"
CLOSE_ATTEMPT = "close_attempt"
FINISH_STEP = "finish_step"
CLOSE_RUN = "close_run"
RELEASE_LOCK = "release_lock"
REMOVE_PARTIAL_BACKUP = "remove_partial_backup"


@attrs.frozen
class RecoveryPlan:
    """What recovery will do; `refusal` set means: change nothing, a human must look."""

    actions: tuple[Action, ...] = ()
    refusal: NeedsHuman | None = None
    state: State | None = None
    #: The journals as the plan sees them: as read, or as they are once a damaged JSONL is
    #: mended from the table (`engine.core.mend`).
    snapshot: Snapshot | None = None

    @property
    def needed(self) -> bool:
        """Whether anything is to be done or refused."""
        return bool(self.actions) or self.refusal is not None

    @property
    def restores(self) -> bool:
        """Whether the plan replaces the database with a backup."""
        return any(a.kind in (REDO_RESTORE, RESTORE_RUN_BACKUP) for a in self.actions)


def diagnose(
    snapshot: Snapshot,
    facts: DatabaseFacts,
    *,
    current_run: str = "",
    state: State | None = None,
    adopt_key: bool = False,
) -> RecoveryPlan:
    """Decide how to bring journals and database to a consistent state. Pure.

    `state` is `replay(snapshot.longest)` when the caller has it already (not used when the
    JSONL is mended). The snapshot may start at a checkpoint (`Snapshot.base`): the state is
    then the checkpoint's, folded with the events after it. `adopt_key`: seal a plain journal
    with the configured key (`schemalog recover`). Refuses (IrreconcilableState / JournalsDiverged / JournalChainBroken /
    DatabaseCorrupt) rather than guess when data could be lost.
    """
    mend = mend_jsonl(snapshot)
    if isinstance(mend, NeedsHuman):
        return RecoveryPlan(refusal=mend)
    if mend is not None:
        snapshot, state = mend.snapshot, None
    cons = snapshot.consistency
    refusal = tampering_refusal(cons)
    if refusal is not None:
        return RecoveryPlan(refusal=refusal)
    if cons.jsonl_only and snapshot.table.events:
        # A table that holds nothing (lost, or a database replaced by a copy without it) is
        # rebuilt from the JSONL whole; a table that holds events takes only a plausible tail.
        odd = implausible_tail(snapshot.table.events, cons.jsonl_only)
        if odd is not None:
            return RecoveryPlan(
                refusal=JournalsDiverged(
                    f"the JSONL holds {len(cons.jsonl_only)} event(s) the journal table lacks, "
                    f"and seq {odd.seq} ({odd.kind.value}) is one no interrupted command writes "
                    "there alone",
                    hint="someone else wrote to the JSONL: compare both journals with "
                    "`schemalog verify --json` (see `schemalog help recovery`, tampering)",
                )
            )
    refusal = forged_checkpoint(snapshot)
    if refusal is not None:
        return RecoveryPlan(refusal=refusal)

    seal, unkeyed = sealing(snapshot, adopt=adopt_key)
    if unkeyed is not None:
        return RecoveryPlan(refusal=unkeyed)
    actions: list[Action] = mend_actions(snapshot, mend)
    if seal is not None:
        actions.append(Action(SEAL_WITH_KEY, seal))
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
    state = replay(events) if state is None else state

    expected_version = state.version
    pending = state.pending_restore
    if pending is not None:
        record = state.backup_by_id.get(pending.backup_id)
        if record is not None and facts.preserved_for == record.id:
            actions.append(
                Action(
                    REDO_RESTORE,
                    f"redo the interrupted restore of backup {record.id}",
                    backup=record,
                    data={"preserved": pending.preserved},
                )
            )
            expected_version = record.version
        else:
            why = (
                "names a backup the journal does not know"
                if record is None
                else "was interrupted before the database was preserved"
            )
            actions.append(
                Action(
                    CLOSE_RESTORE,
                    f"the restore of backup {pending.backup_id} {why}: the database was not "
                    "changed; close it",
                    run_id=pending.run_id,
                    data={"backup_id": pending.backup_id},
                )
            )

    open_runs = [r for r in state.open_runs if r.run_id != current_run]
    open_attempts = [a for a in state.open_attempts if a.run_id != current_run]
    restoring = any(a.kind == REDO_RESTORE for a in actions)
    if facts.integrity_ok is False and not restoring:
        run_backup = _run_backup(state, {r.run_id for r in open_runs})
        if run_backup is None:
            return RecoveryPlan(refusal=_corrupt(state))
        actions.append(
            Action(
                RESTORE_RUN_BACKUP,
                f"the database is damaged: restore the interrupted run's own backup {run_backup.id}",
                backup=run_backup,
            )
        )
        expected_version = run_backup.version

    for attempt in open_attempts:
        started = _started(events, attempt)
        nontx = bool(attempt.direction) and started.get("transactional") is False
        target = attempt.version if attempt.direction == "up" else attempt.version - 1
        ran_to_end = facts.user_version == target != expected_version
        if nontx and ran_to_end and facts.integrity_ok is not False:
            # A step outside a transaction sets user_version as its last statement: it ran to
            # its end, and only the event saying so was lost with the process.
            actions.append(
                Action(
                    FINISH_STEP,
                    f"the {attempt.direction} of version {attempt.version} by run {attempt.run_id} "
                    f"ran to its end before the interruption (user_version is {target}): "
                    "record it as done",
                    run_id=attempt.run_id,
                    version=attempt.version,
                    direction=attempt.direction,
                    data={
                        "name": attempt.name,
                        "checksum": started.get("checksum", ""),
                        "fingerprint_after": facts.fingerprint,
                        "to_version": target,
                    },
                )
            )
            expected_version = target
            continue
        note = (
            " (its statements that completed stay: it ran outside a transaction)" if nontx else ""
        )
        actions.append(
            Action(
                CLOSE_ATTEMPT,
                f"attempt to {attempt.direction} version {attempt.version} by run "
                f"{attempt.run_id} was interrupted{note}",
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
    for name in facts.partial_backups:
        actions.append(
            Action(
                REMOVE_PARTIAL_BACKUP,
                f"unfinished backup file {name} of an interrupted run",
                data={"path": name},
            )
        )

    replacing = any(a.kind in (REDO_RESTORE, RESTORE_RUN_BACKUP) for a in actions)
    if not replacing and facts.user_version != expected_version and events:
        return RecoveryPlan(
            refusal=IrreconcilableState(
                f"the journal says version {expected_version} but PRAGMA user_version is "
                f"{facts.user_version}",
                hint="something outside schemalog changed the database; inspect it, then restore a "
                "backup: `schemalog backup list`, then `schemalog backup restore ID`",
            )
        )
    return RecoveryPlan(actions=tuple(actions), state=state, snapshot=snapshot)


def mend_actions(snapshot: Snapshot, mend: JsonlMend | None) -> list[Action]:
    """The repair of the JSONL in `snapshot` (as mended by `mend`): rewrite a JSONL damaged
    before an event, or cut a torn or damaged tail; none when it is intact. Pure."""
    if mend is not None and mend.rewrite:
        return [Action(REWRITE_JSONL, mend.detail, events=snapshot.jsonl.events, data=mend.record)]
    torn = snapshot.jsonl.torn
    if torn is None:
        return []
    if mend is not None:
        return [Action(REPAIR_TORN_TAIL, mend.detail, torn=torn, data=mend.record)]
    return [
        Action(REPAIR_TORN_TAIL, f"{len(torn.data)} bytes of an unfinished JSONL line", torn=torn)
    ]


def needs_integrity_check(snapshot: Snapshot) -> bool:
    """Whether the journal shows an interruption (then recovery checks integrity). Pure."""
    if snapshot.jsonl.torn is not None or not snapshot.consistency.consistent:
        return True
    events = snapshot.table.events or snapshot.jsonl.events
    if not events:
        return False
    last = events[-1]
    return last.kind not in (
        Kind.LOCK_RELEASED,
        Kind.RECOVERY_FINISHED,
        Kind.BACKUP_REMOVED,
        Kind.CHECKPOINT,
    )


def corrupt_error(events: Sequence[Event], *, what: str) -> DatabaseCorrupt:
    """The refusal for a damaged database, naming the newest verified backup `events` know."""
    try:
        state = replay(events)
    except NeedsHuman:
        state = State()
    return DatabaseCorrupt(what, hint=_corrupt(state).hint)


def _started(events: Sequence[Event], attempt) -> dict[str, Any]:
    """The payload of the attempt's `step_started` (empty if it is not among `events`)."""
    index = attempt.started_seq - events[0].seq if events else -1
    if 0 <= index < len(events) and events[index].seq == attempt.started_seq:
        return events[index].data
    for e in reversed(events):
        if e.seq == attempt.started_seq:
            return e.data
    return {}


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

"""Tests for schemalog.engine.core.diagnosis: the pure decision `diagnose()` over constructed
journals and database facts."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from schemalog.engine.base.errors import DatabaseCorrupt, IrreconcilableState
from schemalog.engine.core.diagnosis import (
    CLOSE_ATTEMPT,
    CLOSE_RESTORE,
    CLOSE_RUN,
    FINISH_STEP,
    MIRROR_TO_JSONL,
    MIRROR_TO_TABLE,
    REDO_RESTORE,
    RELEASE_LOCK,
    REMOVE_PARTIAL_BACKUP,
    REPAIR_TORN_TAIL,
    RESTORE_RUN_BACKUP,
    DatabaseFacts,
    RecoveryPlan,
    diagnose,
)
from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalChainBroken, JournalsDiverged
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.store import ReadResult, TornTail

DEAD = "deadbeef0001"  # a run that was killed
DONE = "f00d00000001"  # a run that finished
ME = "c0ffee000001"  # the run doing the recovery


# --- building journals and facts ------------------------------------------------------------


def chain(drafts: list[Draft], *, after: tuple[Event, ...] = ()) -> tuple[Event, ...]:
    """Seal `drafts` into a valid hash chain continuing `after`; returns `after` + the new ones."""
    events = list(after)
    for i, draft in enumerate(drafts):
        seq = len(events) + 1
        prev = events[-1].hash if events else GENESIS
        events.append(
            seal(draft, seq=seq, prev=prev, ts=f"2026-01-01T00:00:{seq % 60:02d}.{i:06d}Z")
        )
    return tuple(events)


def ev(kind: Kind, version: int | None = None, /, run: str = DONE, **data: Any) -> Draft:
    """A draft of `kind` by `run`."""
    return Draft(run, kind, version, data)


def backup_data(backup_id: str, version: int, *, verified: bool = True) -> dict[str, Any]:
    """The payload of a `backup_taken` event."""
    return {
        "id": backup_id,
        "path": f"/backups/{backup_id}.sqlite",
        "version": version,
        "created_at": f"2026-01-01T00:00:{version:02d}.000000Z",
        "size": 4096,
        "sha256": "0" * 64,
        "verified": verified,
        "compression": "none",
    }


def run_start(run: str, backup: tuple[str, int] | None = None, command: str = "up") -> list[Draft]:
    """`run_started`, `lock_acquired` and (optionally) the run's `backup_taken`."""
    drafts = [
        ev(Kind.RUN_STARTED, run=run, command=command, pid=4242, host="h"),
        ev(Kind.LOCK_ACQUIRED, run=run, pid=4242, host="h", command=command),
    ]
    if backup is not None:
        drafts.append(ev(Kind.BACKUP_TAKEN, backup[1], run=run, **backup_data(*backup)))
    return drafts


def step(run: str, version: int, *, transactional: bool = True, applied: bool = True):
    """`step_started` (and `step_applied` when `applied`) of migration `version`."""
    drafts = [
        ev(
            Kind.STEP_STARTED,
            version,
            run=run,
            direction="up",
            name=f"m{version}",
            checksum="c",
            transactional=transactional,
            foreign_keys=True,
        )
    ]
    if applied:
        drafts.append(
            ev(
                Kind.STEP_APPLIED,
                version,
                run=run,
                direction="up",
                name=f"m{version}",
                checksum="c",
                fingerprint_before=f"fp{version - 1}",
                fingerprint_after=f"fp{version}",
            )
        )
    return drafts


def run_end(run: str) -> list[Draft]:
    """`run_finished` and `lock_released`."""
    return [
        ev(Kind.RUN_FINISHED, run=run, outcome="succeeded", error=None),
        ev(Kind.LOCK_RELEASED, run=run, reason="finished"),
    ]


# A healthy history: run DONE took backup v0 and applied migrations 1 and 2.
HEALTHY: tuple[Event, ...] = chain(
    [*run_start(DONE, ("v0000-a", 0)), *step(DONE, 1), *step(DONE, 2), *run_end(DONE)]
)


def snapshot(
    table: tuple[Event, ...],
    jsonl: tuple[Event, ...] | None = None,
    *,
    torn: TornTail | None = None,
    table_exists: bool = True,
    jsonl_exists: bool = True,
) -> Snapshot:
    """What `Journal.snapshot()` would read: both stores (the JSONL defaults to the table)."""
    jsonl = table if jsonl is None else jsonl
    return Snapshot(
        table=ReadResult(events=table, exists=table_exists),
        jsonl=ReadResult(events=jsonl, torn=torn, exists=jsonl_exists),
        consistency=compare(table, jsonl),
    )


def facts(user_version: int, *, integrity_ok: bool | None = True, **files: Any) -> DatabaseFacts:
    """What the database (and the files beside it) say."""
    return DatabaseFacts(
        user_version=user_version, fingerprint="fp", integrity_ok=integrity_ok, **files
    )


def action_kinds(plan: RecoveryPlan) -> list[str]:
    """The kinds of the plan's actions, in order."""
    return [a.kind for a in plan.actions]


# --- diagnose(): pure decisions -------------------------------------------------------------


class TestDiagnoseHealthy:
    def test_healthy_gives_an_empty_plan(self):
        """Agreeing journals and user_version equal to the replayed version: nothing to do."""
        plan = diagnose(snapshot(HEALTHY), facts(2))
        assert plan.actions == () and plan.refusal is None and not plan.needed
        assert plan.state is not None and plan.state.version == 2

    def test_fresh_database_gives_an_empty_plan(self):
        """No journal at all and user_version 0: nothing to do."""
        plan = diagnose(snapshot((), table_exists=False, jsonl_exists=False), facts(0))
        assert not plan.needed

    def test_unchecked_integrity_is_not_damage(self):
        """integrity_ok None (not checked) never triggers a restore or a refusal."""
        assert not diagnose(snapshot(HEALTHY), facts(2, integrity_ok=None)).needed

    def test_is_pure(self):
        """The same inputs give the same plan, and the inputs are not changed."""
        snap, f = snapshot(HEALTHY[:-2]), facts(2)
        copy = attrs.evolve(snap)
        assert diagnose(snap, f) == diagnose(snap, f)
        assert snap == copy


class TestDiagnoseJournals:
    def test_torn_tail_is_repaired(self):
        """Bytes after the JSONL's last newline: cut them (saved aside by recover)."""
        torn = TornTail(offset=1234, data=b'{"seq":9,"id":"')
        plan = diagnose(snapshot(HEALTHY, torn=torn), facts(2))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL]
        assert plan.actions[0].torn == torn

    def test_table_ahead_is_mirrored_to_the_jsonl(self):
        """Committed events missing from the JSONL (crash after COMMIT) are copied to it."""
        plan = diagnose(snapshot(HEALTHY, HEALTHY[:-3]), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_JSONL]
        assert plan.actions[0].events == HEALTHY[-3:]

    def test_jsonl_ahead_is_mirrored_to_the_table(self):
        """Events written to the JSONL first (outside a transaction) are inserted in the table."""
        plan = diagnose(snapshot(HEALTHY[:-2], HEALTHY), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_TABLE]
        assert plan.actions[0].events == HEALTHY[-2:]

    def test_missing_jsonl_is_rebuilt_from_the_table(self):
        """A deleted JSONL: every event of the table is written to a new one."""
        plan = diagnose(snapshot(HEALTHY, (), jsonl_exists=False), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_JSONL]
        assert plan.actions[0].events == HEALTHY

    def test_missing_table_is_rebuilt_from_the_jsonl(self):
        """A database without the journal table: every JSONL event is inserted."""
        plan = diagnose(snapshot((), HEALTHY, table_exists=False), facts(2))
        assert action_kinds(plan) == [MIRROR_TO_TABLE]
        assert plan.actions[0].events == HEALTHY

    def test_torn_tail_and_table_ahead_together(self):
        """A JSONL append cut short after COMMIT: cut the tail, then mirror the table."""
        torn = TornTail(offset=99, data=b'{"se')
        plan = diagnose(snapshot(HEALTHY, HEALTHY[:-1], torn=torn), facts(2))
        assert action_kinds(plan) == [REPAIR_TORN_TAIL, MIRROR_TO_JSONL]

    @pytest.mark.parametrize("k", [1, 4, len(HEALTHY)])
    def test_diverged_at_k_is_refused_naming_k(self, k: int):
        """Two valid chains that differ from seq k on: refuse (JournalsDiverged), do nothing."""
        other = chain(
            [ev(Kind.DRIFT_DETECTED, run="eeeeeeeeeeee", allowed=False)], after=HEALTHY[: k - 1]
        )
        plan = diagnose(snapshot(HEALTHY, other), facts(2))
        assert isinstance(plan.refusal, JournalsDiverged)
        assert f"seq {k}" in plan.refusal.what
        assert plan.refusal.exit_code == 4
        assert plan.actions == ()

    def test_edited_event_in_both_is_a_broken_chain(self):
        """The same event edited in both journals: the hash chain breaks there (refusal)."""
        edited = attrs.evolve(HEALTHY[3], data={**HEALTHY[3].data, "name": "changed"})
        events = (*HEALTHY[:3], edited, *HEALTHY[4:])
        plan = diagnose(snapshot(events), facts(2))
        assert isinstance(plan.refusal, JournalChainBroken)
        assert "seq 4" in plan.refusal.what
        assert plan.actions == ()


# An interrupted run DEAD: it took backup v2, then died inside (or after) step 3.
def interrupted(*, transactional: bool = True, backup_verified: bool = True) -> tuple[Event, ...]:
    """HEALTHY, then run DEAD: its backup of v2 and an open attempt at migration 3."""
    return chain(
        [
            *run_start(DEAD),
            ev(
                Kind.BACKUP_TAKEN,
                2,
                run=DEAD,
                **backup_data("v0002-b", 2, verified=backup_verified),
            ),
            *step(DEAD, 3, transactional=transactional, applied=False),
        ],
        after=HEALTHY,
    )


class TestDiagnoseInterruptions:
    def test_open_attempt_is_closed(self):
        """A step_started without outcome: the attempt, the run and its lock are closed."""
        plan = diagnose(snapshot(interrupted()), facts(2))
        assert action_kinds(plan) == [CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK]
        close = plan.actions[0]
        assert (close.run_id, close.version, close.direction) == (DEAD, 3, "up")
        assert plan.actions[1].run_id == plan.actions[2].run_id == DEAD

    def test_dead_lock_record_is_released(self):
        """A lock_acquired whose run finished without lock_released: only the lock is released."""
        events = chain(
            [*run_start(DEAD), ev(Kind.RUN_FINISHED, run=DEAD, outcome="succeeded")],
            after=HEALTHY,
        )
        plan = diagnose(snapshot(events), facts(2))
        assert action_kinds(plan) == [RELEASE_LOCK]
        assert plan.actions[0].run_id == DEAD

    def test_the_recovering_run_is_left_open(self):
        """The run doing the recovery is not closed, nor its lock released."""
        events = chain(run_start(ME), after=HEALTHY)
        assert not diagnose(snapshot(events), facts(2), current_run=ME).needed
        assert action_kinds(diagnose(snapshot(events), facts(2))) == [CLOSE_RUN, RELEASE_LOCK]

    def test_pending_restore_is_redone(self):
        """restore_started without backup_restored: redo it (whatever user_version is now)."""
        events = chain(
            [
                *run_start(DEAD, command="backup restore"),
                ev(
                    Kind.RESTORE_STARTED,
                    0,
                    run=DEAD,
                    backup_id="v0000-a",
                    preserved="/backups/pre-restore-x",
                    reason="requested",
                ),
            ],
            after=HEALTHY,
        )
        for now_version in (0, 2, 7):
            plan = diagnose(snapshot(events), facts(now_version, preserved_for="v0000-a"))
            assert plan.refusal is None
            assert action_kinds(plan) == [REDO_RESTORE, CLOSE_RUN, RELEASE_LOCK]
            redo = plan.actions[0]
            assert redo.backup is not None and redo.backup.id == "v0000-a"
            assert redo.data["preserved"] == "/backups/pre-restore-x"

    def test_pending_restore_without_its_preserved_copy_is_closed(self):
        """A restore_started whose preserved copy has no manifest naming that backup (cut
        before the preservation finished, or a forged line): nothing was changed, so it is
        closed, never carried out (invariant 11)."""
        events = chain(
            [
                *run_start(DEAD, command="backup restore"),
                ev(Kind.RESTORE_STARTED, 0, run=DEAD, backup_id="v0000-a", preserved="/nowhere"),
            ],
            after=HEALTHY,
        )
        for preserved_for in (None, "v0002-b"):
            plan = diagnose(snapshot(events), facts(2, preserved_for=preserved_for))
            assert plan.refusal is None
            assert action_kinds(plan) == [CLOSE_RESTORE, CLOSE_RUN, RELEASE_LOCK]
            assert "not changed" in plan.actions[0].detail

    def test_pending_restore_of_an_unknown_backup_is_closed(self):
        """A restore_started naming a backup the journal does not know is closed, not carried out."""
        events = chain(
            [*run_start(DEAD), ev(Kind.RESTORE_STARTED, 0, run=DEAD, backup_id="nope")],
            after=HEALTHY,
        )
        plan = diagnose(snapshot(events), facts(2))
        assert plan.refusal is None
        assert action_kinds(plan)[0] == CLOSE_RESTORE
        assert "nope" in plan.actions[0].detail

    def test_interrupted_nontransactional_step_on_a_sound_database_is_closed(self):
        """An open non-transactional attempt on a database that passes its check is closed,
        saying its completed statements stay; no backup is restored over later writes."""
        plan = diagnose(snapshot(interrupted(transactional=False)), facts(2, integrity_ok=True))
        assert action_kinds(plan) == [CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK]
        assert "statements that completed stay" in plan.actions[0].detail
        assert plan.refusal is None

    def test_nontransactional_step_that_ran_to_its_end_is_recorded(self):
        """A non-transactional step whose last statement (user_version) ran before the crash is
        recorded as applied, not refused as a version mismatch."""
        plan = diagnose(snapshot(interrupted(transactional=False)), facts(3, integrity_ok=True))
        assert plan.refusal is None
        assert action_kinds(plan) == [FINISH_STEP, CLOSE_RUN, RELEASE_LOCK]
        assert plan.actions[0].data["fingerprint_after"] == "fp"

    def test_interrupted_nontransactional_step_on_a_damaged_database_restores(self):
        """The same on a damaged database: the run's own backup is restored first."""
        plan = diagnose(snapshot(interrupted(transactional=False)), facts(3, integrity_ok=False))
        assert action_kinds(plan) == [RESTORE_RUN_BACKUP, CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK]
        assert plan.actions[0].backup is not None and plan.actions[0].backup.id == "v0002-b"

    def test_damaged_database_with_the_run_backup_is_restored(self):
        """integrity_ok False after an interrupted run: restore that run's backup."""
        plan = diagnose(snapshot(interrupted()), facts(2, integrity_ok=False))
        assert action_kinds(plan)[0] == RESTORE_RUN_BACKUP
        assert plan.actions[0].backup is not None and plan.actions[0].backup.id == "v0002-b"
        assert "damaged" in plan.actions[0].detail

    def test_damaged_database_without_a_run_backup_is_refused(self):
        """integrity_ok False and no interrupted run: DatabaseCorrupt naming the newest backup."""
        plan = diagnose(snapshot(HEALTHY), facts(2, integrity_ok=False))
        assert isinstance(plan.refusal, DatabaseCorrupt)
        assert plan.refusal.hint is not None and "v0000-a" in plan.refusal.hint
        assert "schemalog backup restore v0000-a" in plan.refusal.hint
        assert plan.actions == ()

    def test_damaged_database_with_an_unchecked_run_backup_is_restored(self):
        """The run's backup whose background check never finished (killed first) is the one
        restored: the restore checks SHA-256 and integrity before it touches anything."""
        plan = diagnose(snapshot(interrupted(backup_verified=False)), facts(2, integrity_ok=False))
        assert plan.refusal is None
        assert RESTORE_RUN_BACKUP in action_kinds(plan)

    def test_damaged_database_without_any_verified_backup(self):
        """No verified backup at all: the refusal says so."""
        events = chain([*step(DONE, 1)])
        plan = diagnose(snapshot(events), facts(1, integrity_ok=False))
        assert isinstance(plan.refusal, DatabaseCorrupt)
        assert "no verified backup" in (plan.refusal.hint or "")

    def test_unfinished_backup_files_are_removed(self):
        """`*.tmp` files of a backup cut short are listed for removal (after the closes)."""
        partial = ("/backups/v0002-x.sqlite.tmp",)
        plan = diagnose(snapshot(interrupted()), facts(2, partial_backups=partial))
        assert action_kinds(plan) == [CLOSE_ATTEMPT, CLOSE_RUN, RELEASE_LOCK, REMOVE_PARTIAL_BACKUP]
        assert plan.actions[-1].data == {"path": partial[0]}

    def test_user_version_mismatch_is_refused(self):
        """user_version differs from the replayed version (no restore pending): refusal."""
        plan = diagnose(snapshot(HEALTHY), facts(5))
        assert isinstance(plan.refusal, IrreconcilableState)
        assert "version 2" in plan.refusal.what and "user_version is 5" in plan.refusal.what

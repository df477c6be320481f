"""Event kinds and the event envelope.

An `Event` is sealed: it has its place in the log (`seq`), its identity (`id`),
its time (`ts`) and its link in the hash chain (`prev`, `hash`). A `Draft` is
what a caller asks to record; the journal seals it.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["Draft", "Event", "Kind"]


class Kind(enum.StrEnum):
    """Every kind of event schemalog records (payloads: `schemalog help events`)."""

    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    LOCK_ACQUIRED = "lock_acquired"
    LOCK_RELEASED = "lock_released"
    BACKUP_TAKEN = "backup_taken"
    BACKUP_VERIFIED = "backup_verified"
    BACKUP_REMOVED = "backup_removed"
    RESTORE_STARTED = "restore_started"
    BACKUP_RESTORED = "backup_restored"
    RESTORE_FAILED = "restore_failed"
    STEP_STARTED = "step_started"
    STEP_APPLIED = "step_applied"
    STEP_REVERTED = "step_reverted"
    VERIFICATION_FAILED = "verification_failed"
    STEP_FAILED = "step_failed"
    ROLLED_BACK = "rolled_back"
    DRIFT_DETECTED = "drift_detected"
    BASELINE_SET = "baseline_set"
    RECOVERY_STARTED = "recovery_started"
    RECOVERY_FINISHED = "recovery_finished"
    ATTEMPT_INTERRUPTED = "attempt_interrupted"
    JOURNAL_REPAIRED = "journal_repaired"
    CHECKSUM_ACCEPTED = "checksum_accepted"
    #: From this event on, the chain is HMAC-SHA-256 under the journal key (journal/chain.py).
    JOURNAL_KEYED = "journal_keyed"
    #: The replayed state at this point of the chain (journal.checkpoint): commands start
    #: from the last one instead of from the first event.
    CHECKPOINT = "checkpoint"
    # The fleet journal (`schemalog fleet up`): one fleet run over many databases.
    FLEET_STARTED = "fleet_started"
    DATABASE_STARTED = "database_started"
    DATABASE_FINISHED = "database_finished"
    FLEET_FINISHED = "fleet_finished"


@attrs.frozen
class Draft:
    """An event a caller wants recorded; the journal gives it seq, id, ts and its hash."""

    run_id: str
    kind: Kind
    version: int | None = None
    data: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Event:
    """One immutable entry of the journal, identical in the table and in the JSONL.

    `hash` is the SHA-256 (HMAC-SHA-256 under the journal key, from a `journal_keyed` event
    on) of the canonical JSON of every other field (so it covers `prev`, the previous event's
    hash). `data` must be treated as read-only.
    """

    seq: int
    id: str
    ts: str
    run_id: str
    kind: Kind
    version: int | None
    data: dict[str, Any]
    prev: str
    hash: str

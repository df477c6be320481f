"""Whether what the journals hold can be schemalog's own writing. Pure.

Three tests keep a forged or stray journal line from doing harm (invariant 11): the two
stores must agree and each chain must check (`tampering_refusal`); events present only in the
JSONL are copied into the table only when they are a plausible tail, events a command writes
outside a transaction (`implausible_tail`); and a checkpoint in the JSONL alone must be the
state the events before it give (`forged_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemalog.engine.base.errors import NeedsHuman
from schemalog.engine.core.keying import key_refusal
from schemalog.journal.checkpoint import mismatched_checkpoints
from schemalog.journal.consistency import Consistency
from schemalog.journal.errors import JournalChainBroken, JournalsDiverged
from schemalog.journal.events import Event, Kind
from schemalog.journal.snapshot import Snapshot

__all__ = ["forged_checkpoint", "implausible_tail", "tampering_refusal"]

#: Kinds a command appends outside a transaction (JSONL first): the only ones that can be
#: in the JSONL alone after a crash. Steps' own outcomes are there only for steps that ran
#: outside a transaction (`transactional = False`), checked separately.
_OUTSIDE_TRANSACTION = frozenset(
    {
        Kind.RUN_STARTED,
        Kind.RUN_FINISHED,
        Kind.LOCK_ACQUIRED,
        Kind.LOCK_RELEASED,
        Kind.BACKUP_TAKEN,
        Kind.BACKUP_VERIFIED,
        Kind.BACKUP_REMOVED,
        Kind.RESTORE_STARTED,
        Kind.RESTORE_FAILED,
        Kind.BACKUP_RESTORED,
        Kind.DRIFT_DETECTED,
        Kind.RECOVERY_STARTED,
        Kind.RECOVERY_FINISHED,
        Kind.ATTEMPT_INTERRUPTED,
        Kind.JOURNAL_REPAIRED,
        Kind.STEP_FAILED,
        Kind.VERIFICATION_FAILED,
        Kind.ROLLED_BACK,
        Kind.CHECKSUM_ACCEPTED,
        Kind.JOURNAL_KEYED,
        Kind.CHECKPOINT,
    }
)
_STEP_KINDS = frozenset({Kind.STEP_STARTED, Kind.STEP_APPLIED, Kind.STEP_REVERTED})


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
    if brk is not None and brk.key_problem is not None:
        return key_refusal(where, brk)
    return JournalChainBroken(
        f"the {where} journal's hash chain breaks at seq {cons.first_break}: "
        f"{brk.reason if brk else ''}",
        hint="a past event was changed or removed: see the recovery runbook (tampering), "
        "`schemalog help recovery`",
    )


def implausible_tail(common: Sequence[Event], jsonl_only: Sequence[Event]) -> Event | None:
    """The first JSONL-only event no interrupted command could have written, or None. Pure.

    A command writes to the JSONL alone (for a moment, or until a restore is done) only the
    events it appends outside a transaction; a step's start or success only for a step that
    runs outside a transaction. Anything else in the JSONL alone was put there by someone
    else — except after a restore: the restored table is exactly the backup's (it ends right
    before that backup's `backup_taken`), and the JSONL rightly holds all that came after.
    """
    if _restored_table(common, jsonl_only):
        return None
    nontransactional: set[tuple[str, int | None]] = set()
    wanted = {(e.run_id, e.version) for e in jsonl_only if e.kind in _STEP_KINDS}
    for e in reversed(common):  # steps that started before the tail (only when needed)
        if not wanted:
            break
        if e.kind is Kind.STEP_STARTED and (e.run_id, e.version) in wanted:
            wanted.discard((e.run_id, e.version))
            if e.data.get("transactional") is False:
                nontransactional.add((e.run_id, e.version))
    for e in jsonl_only:
        if e.kind is Kind.STEP_STARTED and e.data.get("transactional") is False:
            nontransactional.add((e.run_id, e.version))
        if e.kind in _OUTSIDE_TRANSACTION:
            continue
        if e.kind in _STEP_KINDS and (e.run_id, e.version) in nontransactional:
            continue
        return e
    return None


def _restored_table(common: Sequence[Event], jsonl_only: Sequence[Event]) -> bool:
    """Whether the table is that of a backup restored since (a restore in the JSONL-only tail
    names a backup taken right after the table's last event)."""
    if not common:
        return False
    last = common[-1].seq
    restored = {e.data.get("backup_id") for e in jsonl_only if e.kind is Kind.RESTORE_STARTED}
    return any(
        e.kind is Kind.BACKUP_TAKEN and e.seq == last + 1 and e.data.get("id") in restored
        for e in jsonl_only[:1]
    )


def forged_checkpoint(snapshot: Snapshot) -> NeedsHuman | None:
    """The refusal for a checkpoint in the JSONL alone that the events before it contradict
    (it would be copied into the table and trusted from then on), or None. Pure."""
    cons = snapshot.consistency
    seqs = {e.seq for e in cons.jsonl_only if e.kind is Kind.CHECKPOINT}
    if not seqs:
        return None
    wrong = mismatched_checkpoints(snapshot.jsonl.events, only=seqs)
    if not wrong:
        return None
    seq, reason = wrong[0]
    return JournalsDiverged(
        f"the JSONL holds a checkpoint at seq {seq} the journal table lacks, and {reason}",
        hint="someone else wrote to the JSONL: compare both journals with "
        "`schemalog verify --json` (see `schemalog help recovery`, tampering)",
    )

"""Whether the journal is keyed as configured. Pure.

With a journal key configured, a new journal is keyed from its first event (the journal writes
`journal_keyed` before it). A journal whose events were all sealed without a key is keyed from
the next event on only when `schemalog recover` is asked to (`adopt`): a journal that was keyed
and is found plain was rewritten by someone without the key, and only the key holder knows
which of the two it is. Every other command refuses it (JournalNotKeyed, exit 4).
"""

from __future__ import annotations

from schemalog.journal.chain import KEY_MISSING, ChainBreak, keyed_since
from schemalog.journal.errors import JournalChainBroken, JournalNotKeyed
from schemalog.journal.journal import Snapshot

__all__ = ["SEAL_WITH_KEY", "key_refusal", "sealing"]

#: The recovery action: write `journal_keyed` before the next event (done by the journal).
SEAL_WITH_KEY = "seal_with_key"


def sealing(snapshot: Snapshot, *, adopt: bool) -> tuple[str | None, JournalNotKeyed | None]:
    """The detail of the SEAL_WITH_KEY action, or the refusal, for a plain journal read with
    a key; (None, None) when there is nothing to seal. Pure."""
    events = snapshot.longest
    if snapshot.key is None or not events or keyed_since(events) is not None:
        return None, None
    count = events[-1].seq  # the events may start at a checkpoint
    if adopt:
        return (
            f"seal the journal with the configured key from seq {count + 1} on (journal_keyed); "
            f"its {count} earlier events stay plain SHA-256",
            None,
        )
    return None, JournalNotKeyed(
        f"the journal's {count} events were sealed without a key, and a journal key is "
        "configured (journal_key_file)",
        hint=f"if this journal was never keyed, run `schemalog recover` once with the key to "
        f"seal it from seq {count + 1} on; if it was, both journals were rewritten: see the "
        "recovery runbook (tampering), `schemalog help recovery`",
    )


def key_refusal(where: str, brk: ChainBreak) -> JournalChainBroken:
    """The refusal for a chain that cannot be checked under the configured key (none given for
    a keyed journal, or another key), naming the first event that fails. Pure."""
    return JournalChainBroken(
        f"the {where} journal cannot be checked from seq {brk.seq}: {brk.reason}",
        hint="set journal_key_file (SCHEMALOG_JOURNAL_KEY_FILE, --journal-key-file) to the key "
        "this journal was sealed with"
        if brk.key_problem == KEY_MISSING
        else "check journal_key_file: it must name the key this journal was sealed with (if it "
        "does, the journal was rewritten: see the recovery runbook, tampering)",
    )

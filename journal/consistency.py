"""Comparing the two journals: where they agree, which one is ahead, where a chain breaks."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from schemalog.journal.chain import GENESIS, ChainBreak, find_break
from schemalog.journal.events import Event

__all__ = ["Consistency", "compare"]


@attrs.frozen
class Consistency:
    """How the table and the JSONL relate; pure data, computed by `compare`."""

    common: int
    table_only: tuple[Event, ...] = ()
    jsonl_only: tuple[Event, ...] = ()
    diverged_at: int | None = None
    table_break: ChainBreak | None = None
    jsonl_break: ChainBreak | None = None

    @property
    def consistent(self) -> bool:
        """Both hold the same valid chain."""
        return not (
            self.table_only
            or self.jsonl_only
            or self.diverged_at is not None
            or self.table_break
            or self.jsonl_break
        )

    @property
    def tampered(self) -> bool:
        """A past event differs between the stores, or a chain is broken."""
        return self.diverged_at is not None or bool(self.table_break or self.jsonl_break)

    @property
    def first_break(self) -> int | None:
        """The lowest seq at which something is wrong with either chain or the agreement."""
        seqs = [
            s
            for s in (
                self.diverged_at,
                self.table_break.seq if self.table_break else None,
                self.jsonl_break.seq if self.jsonl_break else None,
            )
            if s is not None
        ]
        return min(seqs) if seqs else None


def compare(
    table: Sequence[Event],
    jsonl: Sequence[Event],
    *,
    start_seq: int = 1,
    start_prev: str = GENESIS,
    key: bytes | None = None,
    keyed: bool = False,
) -> Consistency:
    """Compare the events of the two stores, hash by hash; check each chain (keyed chains
    under `key`). Pure.

    Both sequences start at `start_seq`, whose event's `prev` must be `start_prev` (the
    defaults: from the first event; `Journal.recent` passes the checkpoint both start with),
    and `keyed` says whether the chain is keyed there already (a checkpoint sealed with the key).
    """
    common = 0
    diverged_at = None
    for a, b in zip(table, jsonl, strict=False):
        if a != b:
            diverged_at = min(a.seq, b.seq)
            break
        common += 1
    if diverged_at is None:
        table_only, jsonl_only = tuple(table[common:]), tuple(jsonl[common:])
    else:
        table_only, jsonl_only = (), ()
    return Consistency(
        common=common,
        table_only=table_only,
        jsonl_only=jsonl_only,
        diverged_at=diverged_at,
        table_break=find_break(
            table, start_seq=start_seq, start_prev=start_prev, key=key, keyed=keyed
        ),
        jsonl_break=find_break(
            jsonl, start_seq=start_seq, start_prev=start_prev, key=key, keyed=keyed
        ),
    )

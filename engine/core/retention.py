"""Backup retention: which backups and preservations to delete to stay within a count and a
size budget.

Pure: this module plans, it deletes nothing (`engine.shell.run.Run.prune` does, journaling
each removal). What is kept, in one rule:

- the size budget (`max_bytes`) covers everything under the backup directory that schemalog
  made: the backups *and* the `pre-restore-*` preservations restores leave behind;
- the count (`keep`) limits the backups, and separately the preservations (each kind keeps at
  most `keep`);
- the newest verified backup and the newest preservation (what the newest restore replaced),
  and what the caller protects (the backup a restore just used, a preservation a pending
  restore needs), are never deleted, even when they alone exceed the budget;
- the others are kept newest first for as long as they fit; the first that does not fit is
  deleted with every older one of its kind (and, for the size budget, every older item), so
  what is kept is always the newest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from schemalog.engine.base.errors import UsageError
from schemalog.journal.replay import BackupRecord

__all__ = ["Preservation", "RetentionPlan", "newest_verified", "plan_budget", "plan_retention"]


@attrs.frozen
class Preservation:
    """A finished `pre-restore-*` directory: the database files a restore replaced."""

    name: str
    created_at: str
    size: int


@attrs.frozen
class RetentionPlan:
    """What to delete, oldest first."""

    backups: tuple[BackupRecord, ...] = ()
    preservations: tuple[Preservation, ...] = ()

    @property
    def freed(self) -> int:
        """Bytes the deletions free."""
        return sum(b.size for b in self.backups) + sum(p.size for p in self.preservations)


def plan_budget(
    backups: Sequence[BackupRecord],
    preservations: Sequence[Preservation] = (),
    *,
    keep: int | None,
    max_bytes: int | None,
    protected: Collection[str] = (),
) -> RetentionPlan:
    """The backups and preservations to delete under the rule of the module docstring.

    `protected` names what must stay besides the newest verified backup and the newest
    preservation: backup ids (the backup a restore just used) and preservation names (a
    pending restore's).
    `None` means no limit. Raises UsageError for a negative limit.
    """
    for name, limit in (("keep", keep), ("max_bytes", max_bytes)):
        if limit is not None and limit < 0:
            msg = f"{name} must be 0 or more, not {limit}"
            raise UsageError(msg)
    items: list[BackupRecord | Preservation] = sorted([*backups, *preservations], key=_age)
    guarded = _guarded(items, set(protected))
    total = sum(items[i].size for i in guarded)
    counts = {kind: sum(1 for i in guarded if _kind(items[i]) == kind) for kind in ("b", "p")}
    stopped = {"b": False, "p": False, "size": False}
    doomed: set[int] = set()
    for i in reversed(range(len(items))):
        if i in guarded:
            continue
        kind, size = _kind(items[i]), items[i].size
        if stopped[kind] or stopped["size"]:
            doomed.add(i)
        elif keep is not None and counts[kind] + 1 > keep:
            stopped[kind] = True
            doomed.add(i)
        elif max_bytes is not None and total + size > max_bytes:
            stopped["size"] = True
            doomed.add(i)
        else:
            counts[kind] += 1
            total += size
    gone = [items[i] for i in sorted(doomed)]
    return RetentionPlan(
        backups=tuple(b for b in gone if isinstance(b, BackupRecord)),
        preservations=tuple(p for p in gone if isinstance(p, Preservation)),
    )


def plan_retention(
    backups: Sequence[BackupRecord], *, keep: int | None, max_bytes: int | None
) -> list[BackupRecord]:
    """The backups to delete, oldest first, to keep at most `keep` backups of `max_bytes` total
    (`plan_budget` without preservations). Raises UsageError for a negative limit."""
    return list(plan_budget(backups, keep=keep, max_bytes=max_bytes).backups)


def newest_verified(backups: Sequence[BackupRecord]) -> BackupRecord | None:
    """The newest backup whose `verified` is True, or None."""
    ordered = sorted(backups, key=_age)
    index = _newest_verified_index(ordered)
    return None if index is None else ordered[index]


def _guarded(items: Sequence[BackupRecord | Preservation], protected: set[str]) -> set[int]:
    """Indexes never deleted: the newest verified backup, the newest preservation, `protected`."""
    guarded = {
        i
        for i, item in enumerate(items)
        if (item.id if isinstance(item, BackupRecord) else item.name) in protected
    }
    newest = _newest_verified_index(items)
    if newest is not None:
        guarded.add(newest)
    preserved = [i for i, item in enumerate(items) if isinstance(item, Preservation)]
    if preserved:
        guarded.add(preserved[-1])
    return guarded


def _newest_verified_index(ordered: Sequence[BackupRecord | Preservation]) -> int | None:
    """Index of the last verified backup in `ordered` (oldest first), or None."""
    for i in reversed(range(len(ordered))):
        item = ordered[i]
        if isinstance(item, BackupRecord) and item.verified:
            return i
    return None


def _kind(item: BackupRecord | Preservation) -> str:
    return "b" if isinstance(item, BackupRecord) else "p"


def _age(item: BackupRecord | Preservation) -> tuple[str, str]:
    """Sort key: oldest first (creation time, then id or name)."""
    return item.created_at, item.id if isinstance(item, BackupRecord) else item.name

"""Backup retention: which backups to delete to stay within a count and a size budget.

Pure: this module plans, it deletes nothing (`engine.shell.backup_file.remove_backup` does).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemalog.engine.base.errors import UsageError
from schemalog.journal.replay import BackupRecord

__all__ = ["newest_verified", "plan_retention"]


def plan_retention(
    backups: Sequence[BackupRecord], *, keep: int | None, max_bytes: int | None
) -> list[BackupRecord]:
    """The backups to delete, oldest first, to keep at most `keep` backups of `max_bytes` total.

    The newest verified backup is never deleted, even when it alone exceeds a limit. The
    others are kept newest first for as long as they fit; the first that does not fit is
    deleted with every older one, so the kept backups are always the newest ones. `None`
    means no limit. Raises UsageError for a negative limit.
    """
    for name, limit in (("keep", keep), ("max_bytes", max_bytes)):
        if limit is not None and limit < 0:
            msg = f"{name} must be 0 or more, not {limit}"
            raise UsageError(msg)
    ordered = sorted(backups, key=_age)
    protected = _newest_verified_index(ordered)
    kept = set() if protected is None else {protected}
    total = 0 if protected is None else ordered[protected].size
    for i in reversed(range(len(ordered))):
        if i == protected:
            continue
        size = ordered[i].size
        if (keep is not None and len(kept) + 1 > keep) or (
            max_bytes is not None and total + size > max_bytes
        ):
            break
        kept.add(i)
        total += size
    return [b for i, b in enumerate(ordered) if i not in kept]


def newest_verified(backups: Sequence[BackupRecord]) -> BackupRecord | None:
    """The newest backup whose `verified` is True, or None."""
    ordered = sorted(backups, key=_age)
    index = _newest_verified_index(ordered)
    return None if index is None else ordered[index]


def _newest_verified_index(ordered: Sequence[BackupRecord]) -> int | None:
    """Index of the last verified backup in `ordered` (oldest first), or None."""
    for i in reversed(range(len(ordered))):
        if ordered[i].verified:
            return i
    return None


def _age(backup: BackupRecord) -> tuple[str, str]:
    """Sort key: oldest first (creation time, then id)."""
    return backup.created_at, backup.id

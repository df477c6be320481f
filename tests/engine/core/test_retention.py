"""Tests for schemalog.engine.core.retention: the newest verified backup survives, budgets hold, newest kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.errors import UsageError
from schemalog.engine.core.retention import (
    Preservation,
    newest_verified,
    plan_budget,
    plan_retention,
)
from schemalog.journal.replay import BackupRecord


def backup(n: int, *, size: int = 100, verified: bool = True) -> BackupRecord:
    """The n-th backup (a larger n is newer)."""
    stamp = f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000000Z"
    return BackupRecord(
        run_id="",
        id=f"v0001-n{n:04d}",
        path=f"{n}.sqlite",
        version=1,
        created_at=stamp,
        size=size,
        sha256="0" * 64,
        verified=verified,
        compression="none",
    )


@st.composite
def backup_sets(draw) -> list[BackupRecord]:
    """Backups in random order with random sizes and verification flags."""
    specs = draw(st.lists(st.tuples(st.integers(0, 1000), st.booleans()), min_size=0, max_size=12))
    items = [backup(i, size=size, verified=ok) for i, (size, ok) in enumerate(specs)]
    return draw(st.permutations(items))


limits = st.one_of(st.none(), st.integers(0, 15))
byte_limits = st.one_of(st.none(), st.integers(0, 6000))


def kept_after(backups: list[BackupRecord], doomed: list[BackupRecord]) -> list[BackupRecord]:
    """The backups not planned for deletion, oldest first."""
    gone = {b.id for b in doomed}
    return sorted((b for b in backups if b.id not in gone), key=lambda b: b.created_at)


class TestPlanRetention:
    def test_no_limits_deletes_nothing(self):
        """Without limits nothing is deleted."""
        assert plan_retention([backup(1), backup(2)], keep=None, max_bytes=None) == []

    def test_keep_count(self):
        """keep=2 deletes all but the two newest, oldest first."""
        items = [backup(i) for i in range(5)]
        assert plan_retention(items[::-1], keep=2, max_bytes=None) == items[:3]

    def test_max_bytes(self):
        """max_bytes keeps the newest backups that fit."""
        items = [backup(i, size=100) for i in range(5)]
        assert plan_retention(items, keep=None, max_bytes=250) == items[:3]

    def test_newest_verified_kept_even_if_too_big(self):
        """The newest verified backup survives even when it alone exceeds max_bytes."""
        big = backup(3, size=10_000)
        items = [backup(1), backup(2), big]
        assert plan_retention(items, keep=None, max_bytes=50) == [backup(1), backup(2)]

    def test_keep_zero_keeps_newest_verified(self):
        """keep=0 still keeps the newest verified backup."""
        items = [backup(1), backup(2), backup(3, verified=False)]
        assert plan_retention(items, keep=0, max_bytes=None) == [
            backup(1),
            backup(3, verified=False),
        ]

    def test_unverified_newer_ones_count(self):
        """Newer unverified backups are kept first, beside the protected verified one."""
        items = [backup(1), backup(2), backup(3, verified=False), backup(4, verified=False)]
        assert plan_retention(items, keep=2, max_bytes=None) == [
            backup(1),
            backup(3, verified=False),
        ]

    def test_nothing_verified(self):
        """With no verified backup, limits apply to all of them."""
        items = [backup(i, verified=False) for i in range(3)]
        assert plan_retention(items, keep=0, max_bytes=None) == items

    def test_stops_at_first_misfit(self):
        """An older small backup is not kept when a newer one did not fit: kept ones are newest."""
        items = [backup(1, size=10), backup(2, size=500), backup(3, size=100)]
        assert plan_retention(items, keep=None, max_bytes=200) == items[:2]

    @pytest.mark.parametrize(
        "kw", [{"keep": -1, "max_bytes": None}, {"keep": None, "max_bytes": -5}]
    )
    def test_negative_limits(self, kw):
        """Negative limits are usage errors."""
        with pytest.raises(UsageError):
            plan_retention([backup(1)], **kw)

    @given(backup_sets(), limits, byte_limits)
    def test_never_deletes_newest_verified(self, backups, keep, max_bytes):
        """Whatever the limits, the newest verified backup is never planned for deletion."""
        protected = newest_verified(backups)
        doomed = plan_retention(backups, keep=keep, max_bytes=max_bytes)
        if protected is not None:
            assert protected.id not in {b.id for b in doomed}

    @given(backup_sets(), limits, byte_limits)
    def test_within_budget_when_possible(self, backups, keep, max_bytes):
        """The kept backups fit both limits whenever the protected one allows it."""
        protected = newest_verified(backups)
        kept = kept_after(backups, plan_retention(backups, keep=keep, max_bytes=max_bytes))
        possible = protected is None or (
            (keep is None or keep >= 1) and (max_bytes is None or protected.size <= max_bytes)
        )
        if possible:
            assert keep is None or len(kept) <= keep
            assert max_bytes is None or sum(b.size for b in kept) <= max_bytes
        else:
            assert kept == [protected]

    @given(backup_sets(), limits, byte_limits)
    def test_keeps_the_newest(self, backups, keep, max_bytes):
        """Apart from the protected one, every kept backup is newer than every deleted one."""
        protected = newest_verified(backups)
        doomed = plan_retention(backups, keep=keep, max_bytes=max_bytes)
        kept = [b for b in kept_after(backups, doomed) if b != protected]
        if kept and doomed:
            assert min(b.created_at for b in kept) > max(b.created_at for b in doomed)

    @given(backup_sets(), limits, byte_limits)
    def test_keeps_as_many_as_fit(self, backups, keep, max_bytes):
        """The newest deleted backup could not have been kept without breaking a limit."""
        doomed = plan_retention(backups, keep=keep, max_bytes=max_bytes)
        if not doomed:
            return
        kept = kept_after(backups, doomed)
        newest_doomed = doomed[-1]
        over_count = keep is not None and len(kept) + 1 > keep
        over_bytes = (
            max_bytes is not None and sum(b.size for b in kept) + newest_doomed.size > max_bytes
        )
        assert over_count or over_bytes

    @given(backup_sets(), limits, byte_limits)
    def test_result_is_oldest_first_subset(self, backups, keep, max_bytes):
        """The plan lists input backups, each once, oldest first."""
        doomed = plan_retention(backups, keep=keep, max_bytes=max_bytes)
        assert [b.created_at for b in doomed] == sorted(b.created_at for b in doomed)
        assert len({b.id for b in doomed}) == len(doomed)
        assert {b.id for b in doomed} <= {b.id for b in backups}


class TestNewestVerified:
    def test_picks_newest_verified(self):
        """The newest verified backup is found regardless of input order."""
        items = [backup(3, verified=False), backup(1), backup(2)]
        assert newest_verified(items) == backup(2)

    def test_none(self):
        """Without a verified backup there is none."""
        assert newest_verified([backup(1, verified=False)]) is None


def preservation(n: int, *, size: int = 100) -> Preservation:
    """The n-th pre-restore directory (a larger n is newer), on the same clock as `backup`."""
    stamp = f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.500000Z"
    return Preservation(name=f"pre-restore-{n:04d}", created_at=stamp, size=size)


@st.composite
def mixed_sets(draw) -> tuple[list[BackupRecord], list[Preservation]]:
    """Backups and preservations interleaved in time, random sizes."""
    specs = draw(
        st.lists(
            st.tuples(st.booleans(), st.integers(0, 1000), st.booleans()), min_size=0, max_size=14
        )
    )
    backups, kept = [], []
    for i, (is_backup, size, ok) in enumerate(specs):
        if is_backup:
            backups.append(backup(i, size=size, verified=ok))
        else:
            kept.append(preservation(i, size=size))
    return backups, kept


class TestPlanBudget:
    def test_preservations_count_against_the_size_budget(self):
        """An old preservation is deleted when the budget cannot hold it with the backups."""
        plan = plan_budget(
            [backup(2), backup(4)], [preservation(1), preservation(3)], keep=None, max_bytes=300
        )
        assert plan.preservations == (preservation(1),)
        assert plan.backups == ()
        assert plan.freed == 100

    def test_the_newest_preservation_is_never_deleted(self):
        """What the newest restore replaced stays, even over budget and with keep=0."""
        plan = plan_budget([backup(1)], [preservation(2, size=10**6)], keep=0, max_bytes=1)
        assert plan.preservations == ()
        assert plan.backups == ()  # the newest verified backup stays too

    def test_protected_preservations_stay(self):
        """A preservation a pending restore needs is not deleted."""
        plan = plan_budget(
            [],
            [preservation(1), preservation(2)],
            keep=1,
            max_bytes=None,
            protected={"pre-restore-0001"},
        )
        assert plan.preservations == ()

    def test_the_count_limits_each_kind(self):
        """keep=1 keeps one backup and one preservation."""
        plan = plan_budget(
            [backup(1), backup(3)], [preservation(2), preservation(4)], keep=1, max_bytes=None
        )
        assert (plan.backups, plan.preservations) == ((backup(1),), (preservation(2),))

    @given(mixed_sets(), limits, byte_limits)
    def test_within_budget_unless_only_the_guarded_remain(self, sets, keep, max_bytes):
        """What is kept fits the budget, or is only what may never be deleted."""
        backups, kept = sets
        plan = plan_budget(backups, kept, keep=keep, max_bytes=max_bytes)
        left_b = [b for b in backups if b not in plan.backups]
        left_p = [p for p in kept if p not in plan.preservations]
        guarded = {newest_verified(backups)} | (
            {max(kept, key=lambda p: p.created_at)} if kept else set()
        )
        assert guarded - {None} <= set(left_b) | set(left_p)
        total = sum(i.size for i in [*left_b, *left_p])
        if max_bytes is not None and total > max_bytes:
            assert set(left_b) | set(left_p) <= guarded
        if keep is not None:
            assert len([b for b in left_b if b not in guarded]) <= max(0, keep)
            assert len(left_p) <= max(keep, 1)

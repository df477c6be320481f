"""Tests for journal.replay: the state of a database derived from its events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.journal.errors import JournalChainBroken
from schemalog.journal.events import Kind
from schemalog.journal.replay import (
    AppliedMigration,
    Attempt,
    BackupRecord,
    LockRecord,
    RestoreRecord,
    RunRecord,
    State,
    replay,
)
from tests.journal.strategies import chain, d, replay_chains

K = Kind


def applied_run(*versions: int, run_id: str = "r1") -> list:
    """Drafts of one `up` run applying `versions` in order."""
    drafts = [d(K.RUN_STARTED, by=run_id, command="up")]
    for v in versions:
        drafts += [
            d(K.STEP_STARTED, v, by=run_id, direction="up", name=f"m{v}"),
            d(
                K.STEP_APPLIED,
                v,
                by=run_id,
                name=f"m{v}",
                checksum=f"c{v}",
                fingerprint_before=f"f{v - 1}",
                fingerprint_after=f"f{v}",
            ),
        ]
    return [*drafts, d(K.RUN_FINISHED, by=run_id, outcome="succeeded")]


class TestEmpty:
    def test_no_events_is_the_initial_state(self):
        """Replaying nothing gives version 0, nothing applied, no lock, no runs."""
        assert replay([]) == State()
        state = State()
        assert (state.last_run, state.open_runs, state.open_attempts) == (None, (), ())
        assert state.applied_by_version == {}
        assert state.backup_by_id == {}


class TestSteps:
    def test_step_applied_sets_version_applied_and_fingerprint(self):
        """Each step_applied records the migration, moves the version and the fingerprint."""
        evs = chain(applied_run(1, 2))
        state = replay(evs)
        assert state.version == 2
        assert state.fingerprint == "f2"
        assert state.seq == len(evs)
        assert state.head_hash == evs[-1].hash
        assert state.applied == (
            AppliedMigration(1, "m1", "c1", evs[2].ts, "r1", "f0", "f1"),
            AppliedMigration(2, "m2", "c2", evs[4].ts, "r1", "f1", "f2"),
        )
        assert [a.outcome for a in state.attempts] == ["applied", "applied"]
        assert state.attempts[0] == Attempt(
            "r1", 1, "up", "m1", evs[1].ts, 2, "applied", evs[2].ts, None
        )
        assert state.open_attempts == ()
        assert state.runs == (RunRecord("r1", "up", evs[0].ts, "succeeded", evs[-1].ts, None),)
        assert state.last_run == state.runs[0]

    def test_step_started_alone_is_an_open_attempt(self):
        """A step_started without an outcome is an open attempt of an open run."""
        evs = chain([d(K.RUN_STARTED, command="up"), d(K.STEP_STARTED, 1, direction="up")])
        state = replay(evs)
        assert state.open_attempts == (Attempt("r1", 1, "up", "", evs[1].ts, 2),)
        assert state.open_runs == (RunRecord("r1", "up", evs[0].ts),)
        assert state.version == 0

    def test_step_reverted_removes_and_sets_to_version(self):
        """step_reverted drops the migration and sets the version to `to_version`."""
        drafts = [
            *applied_run(1, 2, 3),
            d(K.STEP_STARTED, 3, by="r2", direction="down"),
            d(K.STEP_REVERTED, 3, by="r2", to_version=2, fingerprint_after="f2"),
        ]
        state = replay(chain(drafts))
        assert state.version == 2
        assert sorted(state.applied_by_version) == [1, 2]
        assert state.fingerprint == "f2"
        assert state.attempts[-1].outcome == "reverted"
        assert state.attempts[-1].direction == "down"

    def test_step_reverted_defaults_to_the_previous_version(self):
        """Without `to_version`, reverting version v leaves version v - 1."""
        state = replay(chain([*applied_run(1, 2), d(K.STEP_REVERTED, 2)]))
        assert state.version == 1
        assert state.fingerprint == "f2"  # unchanged without fingerprint_after

    @pytest.mark.parametrize("kind", [K.STEP_FAILED, K.VERIFICATION_FAILED, K.ROLLED_BACK])
    def test_failures_close_the_attempt_as_failed(self, kind):
        """A failure event closes the open attempt as failed with its error; nothing is applied."""
        evs = chain(
            [
                *applied_run(1),
                d(K.STEP_STARTED, 2, by="r2", direction="up"),
                d(kind, 2, by="r2", error="boom"),
            ]
        )
        state = replay(evs)
        assert state.attempts[-1].outcome == "failed"
        assert state.attempts[-1].error == "boom"
        assert state.attempts[-1].finished_at == evs[-1].ts
        assert state.open_attempts == ()
        assert state.version == 1
        assert 2 not in state.applied_by_version

    def test_failure_of_another_run_does_not_close_the_attempt(self):
        """An outcome recorded by a different run leaves this run's attempt open."""
        state = replay(chain([d(K.STEP_STARTED, 1), d(K.STEP_FAILED, 1, by="r2")]))
        assert len(state.open_attempts) == 1

    def test_failure_without_a_version_closes_nothing(self):
        """A failure event without a version does not touch open attempts."""
        state = replay(chain([d(K.STEP_STARTED, 1), d(K.STEP_FAILED, None, error="x")]))
        assert len(state.open_attempts) == 1

    def test_attempt_interrupted_closes_another_runs_attempt_and_run(self):
        """Recovery's attempt_interrupted closes the crashed run's attempt and, if asked, its run."""
        evs = chain(
            [
                d(K.RUN_STARTED, by="crashed", command="up"),
                d(K.STEP_STARTED, 1, by="crashed", direction="up"),
                d(K.RUN_STARTED, by="rec", command="recover"),
                d(
                    K.ATTEMPT_INTERRUPTED,
                    1,
                    by="rec",
                    error="killed",
                    data={"run_id": "crashed", "run_interrupted": True},
                ),
            ]
        )
        state = replay(evs)
        crashed_attempt = state.attempts[0]
        assert (crashed_attempt.outcome, crashed_attempt.error) == ("interrupted", "killed")
        runs = {r.run_id: r for r in state.runs}
        assert runs["crashed"].outcome == "interrupted"
        assert runs["crashed"].finished_at == evs[-1].ts
        assert runs["rec"].outcome is None
        assert state.open_runs == (runs["rec"],)

    def test_attempt_interrupted_can_leave_the_run_open(self):
        """Without run_interrupted only the attempt is closed."""
        evs = chain(
            [
                d(K.RUN_STARTED, by="a", command="up"),
                d(K.STEP_STARTED, 1, by="a"),
                d(K.ATTEMPT_INTERRUPTED, 1, by="b", data={"run_id": "a"}),
            ]
        )
        state = replay(evs)
        assert state.attempts[0].outcome == "interrupted"
        assert state.runs[0].outcome is None

    def test_run_finished_twice_keeps_the_first_outcome(self):
        """A finished run is not re-finished, and finishing an unknown run does nothing."""
        evs = chain(
            [
                d(K.RUN_STARTED, command="up"),
                d(K.RUN_FINISHED, outcome="failed", error="e"),
                d(K.RUN_FINISHED, outcome="succeeded"),
                d(K.RUN_FINISHED, by="ghost"),
            ]
        )
        state = replay(evs)
        assert state.runs == (RunRecord("r1", "up", evs[0].ts, "failed", evs[1].ts, "e"),)


class TestBackups:
    def test_backup_taken_and_removed(self):
        """backup_taken records a backup; backup_removed forgets it."""
        evs = chain(
            [
                d(
                    K.BACKUP_TAKEN,
                    id="b1",
                    path="/x/b1",
                    data={"version": 3},
                    created_at="2024-01-01T00:00:00.000000Z",
                    size=10,
                    sha256="ab",
                    verified=True,
                    compression="zstd",
                ),
                d(K.BACKUP_TAKEN, id="b2", created_at="2024-01-02T00:00:00.000000Z"),
            ]
        )
        state = replay(evs)
        assert state.backups == (
            BackupRecord(
                "b1", "/x/b1", 3, "2024-01-01T00:00:00.000000Z", 10, "ab", True, "zstd", "r1"
            ),
            BackupRecord("b2", "", 0, "2024-01-02T00:00:00.000000Z", 0, "", False, "none", "r1"),
        )
        assert set(state.backup_by_id) == {"b1", "b2"}
        state = replay(
            chain([*[d(e.kind, data=e.data) for e in evs], d(K.BACKUP_REMOVED, id="b1")])
        )
        assert [b.id for b in state.backups] == ["b2"]

    def test_removing_an_unknown_backup_is_harmless(self):
        """backup_removed of an id never taken changes nothing."""
        assert replay(chain([d(K.BACKUP_REMOVED, id="nope")])).backups == ()

    def test_backup_verified_marks_a_known_backup(self):
        """backup_verified turns a backup's `verified` on; an unknown id changes nothing."""
        taken = d(K.BACKUP_TAKEN, id="b1", version=1, verified=False)
        state = replay(chain([taken, d(K.BACKUP_VERIFIED, id="b1"), d(K.BACKUP_VERIFIED, id="x")]))
        assert [(b.id, b.verified) for b in state.backups] == [("b1", True)]

    def test_backups_are_ordered_by_creation_time(self):
        """Backups come out oldest first, whatever order they were recorded in."""
        evs = chain(
            [
                d(K.BACKUP_TAKEN, id="late", created_at="2024-02-01T00:00:00.000000Z"),
                d(K.BACKUP_TAKEN, id="early", created_at="2024-01-01T00:00:00.000000Z"),
            ]
        )
        assert [b.id for b in replay(evs).backups] == ["early", "late"]

    def test_restore_started_then_backup_restored(self):
        """A restore is pending until backup_restored, which truncates version and applied."""
        started = [
            *applied_run(1, 2, 3),
            d(K.RESTORE_STARTED, by="r2", backup_id="b1", preserved="/p/pre.db"),
        ]
        evs = chain(
            [*started, d(K.BACKUP_RESTORED, by="r2", data={"version": 1}, fingerprint="f1")]
        )
        mid = replay(evs, until=len(started))
        assert mid.pending_restore == RestoreRecord(
            "r2", "b1", "/p/pre.db", evs[len(started) - 1].ts
        )
        assert mid.version == 3
        state = replay(evs)
        assert state.pending_restore is None
        assert state.version == 1
        assert sorted(state.applied_by_version) == [1]
        assert state.fingerprint == "f1"

    def test_backup_restored_without_fingerprint_keeps_it(self):
        """A restore that records no fingerprint leaves the last one known."""
        state = replay(chain([*applied_run(1, 2), d(K.BACKUP_RESTORED, data={"version": 2})]))
        assert (state.version, state.fingerprint) == (2, "f2")


class TestLockAndMisc:
    def test_lock_acquired_and_released(self):
        """lock_acquired records the holder; lock_released clears it."""
        acquire = d(K.LOCK_ACQUIRED, by="r7", pid=42, host="h", command="up")
        evs = chain([acquire, d(K.LOCK_RELEASED, by="r7")])
        assert replay(evs, until=1).lock == LockRecord("r7", 42, "h", "up", evs[0].ts)
        assert replay(evs).lock is None

    def test_baseline_set_adopts_every_version_up_to_it(self):
        """baseline_set marks versions 1..V applied (baselined) with the names and checksums given."""
        evs = chain(
            [
                d(
                    K.BASELINE_SET,
                    3,
                    names={"1": "a", "2": "b"},
                    checksums={"1": "c1", "3": "c3"},
                    fingerprint="fb",
                )
            ]
        )
        state = replay(evs)
        assert state.version == 3
        assert state.fingerprint == "fb"
        assert [(a.version, a.name, a.checksum, a.baselined) for a in state.applied] == [
            (1, "a", "c1", True),
            (2, "b", "", True),
            (3, "", "c3", True),
        ]

    def test_baseline_set_replaces_what_was_applied(self):
        """A lower baseline drops migrations above it."""
        state = replay(chain([*applied_run(1, 2, 3), d(K.BASELINE_SET, 1)]))
        assert state.version == 1
        assert [a.version for a in state.applied] == [1]
        assert state.fingerprint == "f3"

    @pytest.mark.parametrize(("allowed", "expected"), [(True, "new"), (False, "f1")])
    def test_drift_detected_updates_the_fingerprint_only_when_allowed(self, allowed, expected):
        """An allowed drift adopts the actual fingerprint; a refused one does not."""
        drift = d(K.DRIFT_DETECTED, allowed=allowed, actual="new", expected="f1")
        assert replay(chain([*applied_run(1), drift])).fingerprint == expected

    @pytest.mark.parametrize("kind", [K.RECOVERY_STARTED, K.RECOVERY_FINISHED, K.JOURNAL_REPAIRED])
    def test_history_only_kinds_change_only_the_position(self, kind):
        """Recovery and repair events are history: they move seq and nothing else."""
        base = chain(applied_run(1))
        evs = base + chain([d(kind, note="x")], start_seq=len(base) + 1, prev=base[-1].hash)
        before, after = replay(base), replay(evs)
        assert after.seq == before.seq + 1
        assert (after.version, after.applied, after.runs, after.attempts) == (
            before.version,
            before.applied,
            before.runs,
            before.attempts,
        )


class TestSequence:
    def test_gap_raises_chain_broken(self):
        """A missing seq raises JournalChainBroken naming where it breaks."""
        evs = chain(applied_run(1, 2))
        with pytest.raises(JournalChainBroken, match="breaks at seq 4 \\(expected 3\\)") as info:
            replay(evs[:2] + evs[3:])
        assert info.value.exit_code == 4

    def test_not_starting_at_one_raises(self):
        """A sequence that does not begin at seq 1 is rejected."""
        with pytest.raises(JournalChainBroken, match="expected 1"):
            replay(chain(applied_run(1))[1:])

    def test_duplicate_raises(self):
        """A repeated event is rejected."""
        evs = chain(applied_run(1))
        with pytest.raises(JournalChainBroken):
            replay([*evs[:2], evs[1], *evs[2:]])

    def test_until_stops_at_that_seq(self):
        """`until=k` gives the state right after event k, ignoring later events (even a gap)."""
        evs = chain(applied_run(1, 2))
        state = replay(evs[:3] + evs[4:], until=3)
        assert state.seq == 3
        assert state.head_hash == evs[2].hash
        assert state.version == 1
        assert replay(evs, until=0) == State()

    @given(evs=replay_chains, data=st.data())
    @settings(max_examples=80)
    def test_prefix_equals_until(self, evs, data):
        """Replaying the first k events equals replaying all of them with until=k."""
        k = data.draw(st.integers(0, len(evs)))
        assert replay(evs[:k]) == replay(evs, until=k)

    @given(evs=replay_chains)
    @settings(max_examples=80)
    def test_replay_is_deterministic(self, evs):
        """The same events always give the same state, and the input is not modified."""
        copy = list(evs)
        first = replay(evs)
        assert replay(iter(evs)) == first
        assert evs == copy
        assert first.seq == len(evs)
        assert all(
            a.outcome in (None, "applied", "reverted", "failed", "interrupted")
            for a in first.attempts
        )

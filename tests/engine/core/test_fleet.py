"""The pure part of fleets: outcomes of errors, the canary and the failure budget, summaries,
the version histogram and the fold of the fleet journal into runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.errors import (
    BackupError,
    ConfigError,
    DatabaseCorrupt,
    DriftDetected,
    JournalChainBroken,
    LockTimeout,
    RegistryError,
    StepFailed,
    UsageError,
    VerificationFailed,
)
from schemalog.engine.core.fleet import (
    OUTCOMES,
    DatabaseResult,
    DatabaseStatus,
    Policy,
    Verdict,
    exit_code_of,
    fleet_exit_code,
    next_verdict,
    outcome_of,
    summarize,
    version_histogram,
)
from schemalog.engine.core.fleet_history import fleet_runs
from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.events import Draft, Kind


class TestOutcomeOf:
    @pytest.mark.parametrize(
        "error",
        [
            UsageError("x"),
            ConfigError("x"),
            RegistryError("newer than the files"),
            LockTimeout("held"),
            DatabaseCorrupt("not a database"),
            JournalChainBroken("tampered"),
            DriftDetected("drift"),
        ],
    )
    def test_refused(self, error):
        """Errors that stop schemalog before it changes a database make it `refused`."""
        assert outcome_of(error) == "refused"

    @pytest.mark.parametrize(
        "error",
        [StepFailed("x"), VerificationFailed("x"), BackupError("disk full"), RuntimeError("?")],
    )
    def test_failed(self, error):
        """A run that started and failed, or an unexpected error, makes it `failed`."""
        assert outcome_of(error) == "failed"

    def test_exit_code_is_the_one_up_gives(self):
        """The exit code is the error's own, 1 for an unexpected one."""
        assert exit_code_of(LockTimeout("x")) == 3
        assert exit_code_of(DatabaseCorrupt("x")) == 4
        assert exit_code_of(KeyError("x")) == 1


def result(database: str, outcome: str = "applied") -> DatabaseResult:
    return DatabaseResult(database=database, outcome=outcome)  # type: ignore[arg-type]


NAMES = [f"db{i:02d}" for i in range(10)]


class TestNextVerdict:
    def test_no_policy_always_starts(self):
        """Without canary or budget every database starts, whatever failed."""
        finished = {n: result(n, "failed") for n in NAMES[:5]}
        assert next_verdict(5, Policy(), NAMES, finished) == (Verdict.START, None)

    def test_canary_runs_first(self):
        """Past the canary, nothing starts while a canary is still running."""
        policy = Policy(canary=3)
        assert next_verdict(2, policy, NAMES, {})[0] is Verdict.START
        finished = {n: result(n) for n in NAMES[:2]}
        assert next_verdict(3, policy, NAMES, finished)[0] is Verdict.WAIT
        finished[NAMES[2]] = result(NAMES[2], "up_to_date")
        assert next_verdict(3, policy, NAMES, finished)[0] is Verdict.START

    def test_a_failed_canary_stops_everything(self):
        """Once a canary failed no other database starts, not even another canary."""
        verdict, reason = next_verdict(
            1, Policy(canary=3), NAMES, {NAMES[0]: result(NAMES[0], "failed")}
        )
        assert verdict is Verdict.STOP
        assert reason == f"canary {NAMES[0]} failed"

    def test_a_refused_canary_does_not_stop(self):
        """A refused canary (bad input) says nothing about the migrations: the run goes on."""
        finished = {n: result(n, "refused") for n in NAMES[:2]}
        assert next_verdict(2, Policy(canary=2), NAMES, finished)[0] is Verdict.START

    def test_failure_budget(self):
        """After F failures nothing starts; refused ones do not count."""
        policy = Policy(max_failures=2)
        finished = {NAMES[0]: result(NAMES[0], "failed"), NAMES[1]: result(NAMES[1], "refused")}
        assert next_verdict(2, policy, NAMES, finished)[0] is Verdict.START
        finished[NAMES[2]] = result(NAMES[2], "failed")
        verdict, reason = next_verdict(3, policy, NAMES, finished)
        assert verdict is Verdict.STOP
        assert "--max-failures 2" in reason

    def test_canary_larger_than_the_fleet(self):
        """A canary of more databases than the fleet has never waits."""
        assert next_verdict(3, Policy(canary=50), NAMES[:4], {})[0] is Verdict.START

    def test_policy_rejects_zero(self):
        """A canary or budget below 1 is refused."""
        with pytest.raises(ValueError, match="max_failures"):
            Policy(max_failures=0)

    @given(
        outcomes=st.lists(
            st.sampled_from(["applied", "failed", "refused"]), min_size=1, max_size=30
        ),
        slots=st.integers(1, 4),
        canary=st.none() | st.integers(1, 6),
        budget=st.none() | st.integers(1, 4),
        order=st.randoms(use_true_random=False),
    )
    def test_simulated_fleets_keep_the_policy(self, outcomes, slots, canary, budget, order):
        """In any interleaving: nothing starts after F failures or a failed canary, and
        nothing past the canary starts before every canary has finished."""
        names = [f"d{i:02d}" for i in range(len(outcomes))]
        outcome_of_db = dict(zip(names, outcomes, strict=True))
        policy = Policy(canary=canary, max_failures=budget)
        finished: dict[str, DatabaseResult] = {}
        running: list[str] = []
        index = 0
        while True:
            while index < len(names) and len(running) < slots:
                verdict, _ = next_verdict(index, policy, names, finished)
                if verdict is not Verdict.START:
                    break
                failures = sum(r.outcome == "failed" for r in finished.values())
                assert budget is None or failures < budget
                if canary is not None:
                    assert not any(
                        finished.get(n, result(n)).outcome == "failed" for n in names[:canary]
                    )
                    if index >= canary:
                        assert all(n in finished for n in names[:canary])
                running.append(names[index])
                index += 1
            if not running:
                break
            done = running.pop(order.randrange(len(running)))
            finished[done] = result(done, outcome_of_db[done])
        if index == len(names):
            return
        # It stopped: the policy says why.
        assert next_verdict(index, policy, names, finished)[0] is Verdict.STOP


class TestSummaries:
    def test_summarize_names_every_outcome(self):
        """The summary has every outcome as a key, zero when none had it."""
        counts = summarize([result("a"), result("b", "failed"), result("c")])
        assert list(counts) == list(OUTCOMES)
        assert counts == {"applied": 2, "up_to_date": 0, "failed": 1, "refused": 0, "skipped": 0}

    @pytest.mark.parametrize(
        ("outcomes", "code"),
        [
            (["applied", "up_to_date", "skipped"], 0),
            (["applied", "refused"], 1),
            (["failed"], 1),
            ([], 0),
        ],
    )
    def test_fleet_exit_code(self, outcomes, code):
        """Exit 1 exactly when a database failed or was refused."""
        assert fleet_exit_code([result(str(i), o) for i, o in enumerate(outcomes)]) == code

    def test_histogram_counts_known_versions_in_order(self):
        """The histogram is keyed by version as a string, lowest first; unknown ones are left out."""
        rows = [DatabaseStatus(str(i), v, 3, [], False) for i, v in enumerate([3, 1, 3, None, 10])]
        assert version_histogram(rows) == {"1": 1, "3": 2, "10": 1}


def chain(drafts):
    events, prev = [], GENESIS
    for seq, draft in enumerate(drafts, start=1):
        event = seal(draft, seq=seq, prev=prev)
        events.append(event)
        prev = event.hash
    return events


class TestFleetRuns:
    def test_a_finished_and_an_interrupted_run(self):
        """A run without `fleet_finished` is interrupted: its started databases are interrupted,
        the others not started; the finished run keeps each database's outcome."""
        events = chain(
            [
                Draft("f1", Kind.FLEET_STARTED, None, {"databases": ["a", "b"], "jobs": 2}),
                Draft("f1", Kind.DATABASE_STARTED, None, {"database": "a"}),
                Draft("f1", Kind.DATABASE_STARTED, None, {"database": "b"}),
                Draft(
                    "f1",
                    Kind.DATABASE_FINISHED,
                    3,
                    {"database": "a", "outcome": "applied", "from_version": 0, "to_version": 3},
                ),
                Draft(
                    "f1",
                    Kind.DATABASE_FINISHED,
                    None,
                    {"database": "b", "outcome": "refused", "error": "locked"},
                ),
                Draft("f1", Kind.FLEET_FINISHED, None, {"outcome": "completed", "reason": None}),
                Draft(
                    "f2", Kind.FLEET_STARTED, None, {"databases": ["a", "b", "c"], "resumes": None}
                ),
                Draft("f2", Kind.DATABASE_STARTED, None, {"database": "a"}),
            ]
        )
        first, second = fleet_runs(events)
        assert first.outcome == "completed"
        assert first.options == {"jobs": 2}
        assert [(d.database, d.outcome) for d in first.databases] == [
            ("a", "applied"),
            ("b", "refused"),
        ]
        assert first.databases[1].error == "locked"
        assert second.outcome == "interrupted"
        assert [d.outcome for d in second.databases] == [
            "interrupted",
            "not_started",
            "not_started",
        ]
        assert second.summary["not_started"] == 2

    def test_a_live_run_is_running(self):
        """While its process holds the journal, the last run and its databases are running."""
        events = chain(
            [
                Draft("f1", Kind.FLEET_STARTED, None, {"databases": ["a"]}),
                Draft("f1", Kind.DATABASE_STARTED, None, {"database": "a"}),
            ]
        )
        (run,) = fleet_runs(events, live=True)
        assert run.outcome == "running"
        assert run.databases[0].outcome == "running"

    def test_events_of_other_kinds_are_ignored(self):
        """A journal_repaired event (torn tail saved) does not disturb the fold."""
        events = chain(
            [
                Draft("f0", Kind.JOURNAL_REPAIRED, None, {"what": "torn_tail"}),
                Draft("f1", Kind.FLEET_STARTED, None, {"databases": []}),
                Draft(
                    "f1",
                    Kind.FLEET_FINISHED,
                    None,
                    {"outcome": "stopped", "reason": "canary x failed"},
                ),
            ]
        )
        (run,) = fleet_runs(events)
        assert (run.outcome, run.reason) == ("stopped", "canary x failed")

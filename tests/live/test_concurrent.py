"""Several schemalog processes at once beside the application (DESIGN.md invariants 5 and 9).

A rolling restart starts `up` in every worker at the same moment. One run applies the
migrations; the others wait for the lock and then find nothing to do — or, when the run
failed, report that failure instead of each trying again (and each taking a backup).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.live import migration_sets
from tests.live.harness import RATE, end_state, judge

pytestmark = pytest.mark.live


def racing(ws, writer, count, *, lock_timeout, expect_version):
    """Start `count` `up` at once beside `writer`, wait for all (bounded), stop the writer and
    check the end state. Returns (the commands, the end state)."""
    time.sleep(0.3)
    runs = [ws.spawn("up", lock_timeout=lock_timeout) for _ in range(count)]
    results = [r.wait(timeout=lock_timeout + 60) for r in runs]
    time.sleep(0.3)
    state = end_state(
        ws, writer, outputs=[r.output for r in results], expect_version=expect_version
    )
    return results, state


def _error_line(stderr: str) -> str:
    """The last line of `stderr` that starts with `error:` (empty when none)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    return errors[-1] if errors else ""


def _counts(events: list[dict], kind: str, since_seq: int) -> Counter:
    return Counter(e["version"] for e in events if e["kind"] == kind and e["seq"] > since_seq)


class TestEightConcurrentUps:
    @pytest.mark.live_full
    def test_one_applies_the_others_find_nothing_to_do(self, ws, writers, record):
        """8 `up` at once beside a 500 tx/s writer: all exit 0, each migration applied once,
        every committed row present."""
        ws.prepare(migration_sets.schema_changes())
        before = len(ws.events())
        writer = writers(rate=5 * RATE)  # 500 tx/s unless SCHEMALOG_LIVE_RATE says otherwise
        results, state = racing(ws, writer, 8, lock_timeout=90, expect_version=5)
        events = ws.events()
        applied = _counts(events, "step_applied", before)
        codes = Counter(r.code for r in results)
        record["codes"] = dict(codes)
        record["applied_per_version"] = dict(applied)
        record["stderr_kinds"] = dict(Counter(r.stderr.strip()[:160] for r in results))
        start = min(r.started for r in results)
        end = max(r.finished for r in results)
        record["window_s"] = round(end - start, 2)
        record["app_latency_during_run"] = writer.latency_during(start, end)
        judge(
            record,
            state,
            [
                (codes == Counter({0: 8}), f"exit codes {dict(codes)}, expected 8 x 0"),
                (
                    applied == Counter({2: 1, 3: 1, 4: 1, 5: 1}),
                    f"step_applied per version {dict(applied)}, expected each of 2-5 once",
                ),
            ]
            + [(r.code == 0, f"exit {r.code}: {r.stderr.strip()}") for r in results if r.code],
        )


class TestWaitersOfAFailedRun:
    def test_waiters_report_the_failure_instead_of_retrying(self, ws, writers, record):
        """4 `up` at once with a failing migration: one failed attempt, one backup; the three
        waiters exit 1 naming that run and its error."""
        ws.prepare(migration_sets.failing_step())
        before = len(ws.events())
        backups_before = ws.backup_files()
        writer = writers(rate=RATE)
        results, state = racing(ws, writer, 4, lock_timeout=30, expect_version=3)
        events = ws.events()
        failed = [e for e in events if e["kind"] == "step_failed" and e["seq"] > before]
        backups_taken = [e for e in events if e["kind"] == "backup_taken" and e["seq"] > before]
        new_files = ws.backup_files() - backups_before
        codes = Counter(r.code for r in results)
        failed_run = failed[0]["run_id"] if failed else None
        record["codes"] = dict(codes)
        record["step_failed_events"] = len(failed)
        record["backup_taken_events"] = len(backups_taken)
        record["new_backup_files"] = len(new_files)
        record["failed_run"] = failed_run
        # The waiters: the commands whose error line names the run that failed (the failed
        # run's own error names its file and statement; "waiting for the lock held by ... run
        # X" lines do not count).
        naming = [r for r in results if failed_run and failed_run in _error_line(r.stderr)]
        judge(
            record,
            state,
            [
                (codes == Counter({1: 4}), f"exit codes {dict(codes)}, expected 4 x 1"),
                (len(failed) == 1, f"{len(failed)} failed attempts, expected 1"),
                (len(backups_taken) == 1, f"{len(backups_taken)} backup_taken events, expected 1"),
                (len(new_files) == 1, f"{len(new_files)} new backup files, expected 1"),
                (
                    len(naming) >= 3
                    and all("no_such_table" in _error_line(r.stderr) for r in naming),
                    f"{len(naming)} of the 3 waiters name the failed run {failed_run} and its error",
                ),
            ],
        )

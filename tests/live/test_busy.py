"""A busy database: the application holding a long write transaction, and reading commands
while a migration runs a long statement.

A run that cannot get SQLite's write lock must say so (exit 3, the true cause) within its
`--lock-timeout`, leaving both journals equal. Reading commands (`status`, `history`,
`lock status`) must never wait for a run: they answer at once with one consistent picture.
"""

from __future__ import annotations

import time

import pytest

from tests.live import migration_sets
from tests.live.harness import RATE, end_state, judge, wait_until_computing

pytestmark = pytest.mark.live

HOLD_S = 8.0
BUSY_MESSAGE = "the database is busy: another connection holds a write transaction"
READERS = (("status", "--json"), ("history", "--json"), ("lock", "status", "--json"))
READERS_APP_RATE = 20.0
# A reader may take twice as long as when idle plus this during a run: the run's statement
# keeps one of the two cores busy (CPU contention, ~2x); waiting for a lock costs seconds.
READER_SLACK_S = 0.3
INTO_STATEMENT_S = 2.5  # by then the writing statement has filled SQLite's page cache


class TestApplicationHoldsWriteTransaction:
    @pytest.mark.live_full
    def test_lock_timeout_names_the_busy_database(self, ws, writers, record):
        """The application holds a write transaction 8 s; `--lock-timeout 2 up`: exit 3 within
        the timeout, naming the busy database; both journals equal afterwards."""
        ws.prepare(migration_sets.schema_changes())
        writer = writers(rate=RATE, hold_seconds=HOLD_S)
        time.sleep(0.3)
        writer.hold()
        held_at = time.perf_counter()
        done = ws.run("up", lock_timeout=2)
        finished_after = time.perf_counter() - held_at
        writer.wait_held(timeout=HOLD_S + 10)
        time.sleep(0.3)
        state = end_state(ws, writer, outputs=[done.output], expect_version=1)
        record["run"] = done.brief()
        record["ended_after_hold_began_s"] = round(finished_after, 2)
        judge(
            record,
            state,
            [
                (done.code == 3, f"up exit {done.code}, expected 3: {done.stderr.strip()}"),
                (BUSY_MESSAGE in done.stderr, f"the error says {BUSY_MESSAGE!r}"),
                (
                    finished_after < HOLD_S - 1,
                    f"it ended {finished_after:.1f} s after the hold began (--lock-timeout 2)",
                ),
            ],
        )


class TestReadersNeverWait:
    @pytest.mark.live_full
    @pytest.mark.parametrize("statement", ["reads", "writes"])
    def test_readers_answer_at_once_during_a_long_statement(
        self, ws, writers, record, slow_rows, statement
    ):
        """`status`, `history`, `lock status` during a 5 s statement (one that mostly reads,
        or one that writes megabytes) answer about as fast as when idle, showing the run in
        progress: its step, its start, its pid."""
        ws.prepare(migration_sets.slow(slow_rows, writes=statement == "writes"))
        record["statement"] = statement
        # A writer that leaves the disk some room: in rollback mode a saturating one (100 tx/s
        # here) starves every reader for seconds, schemalog or not; this scenario is about
        # waiting for the migration.
        writer = writers(rate=min(RATE, READERS_APP_RATE))
        for args in READERS:
            ws.run(*args)  # warm the page cache and the interpreter's files
        idle = {args: r.wait(timeout=30).elapsed for args, r in _all_at_once(ws).items()}
        up = ws.spawn("up", lock_timeout=30)
        computing = wait_until_computing(up.pid)  # the slow statement (step 3) runs now
        time.sleep(INTO_STATEMENT_S - 0.5)
        # All three at once: one moment of the run, and none delayed by another's wait.
        during = {args: r.wait(timeout=30) for args, r in _all_at_once(ws).items()}
        done = up.wait(timeout=120)
        state = end_state(ws, writer, outputs=[done.output], expect_version=4)
        status = _json(during[READERS[0]])
        history = _json(during[READERS[1]])
        lock = _json(during[READERS[2]])
        holder = (lock or {}).get("holder") or {}
        status_holder = ((status or {}).get("lock") or {}).get("holder") or {}
        last_run = (status or {}).get("last_run") or {}
        running = [a for a in history or [] if a.get("outcome") == "running"]
        record["run"] = done.brief()
        record["readers"] = {
            " ".join(args): {
                "idle_s": round(idle[args], 3),
                "during_s": round(during[args].elapsed, 3),
                "code": during[args].code,
                "stderr": during[args].stderr.strip()[:300],
            }
            for args in READERS
        }
        record["picture"] = {
            "lock_holder": holder,
            "status_lock_holder": status_holder,
            "status_last_run": last_run,
            "history_running": running,
        }
        record["statement_started_after_s"] = computing
        expectations = [
            (done.code == 0, f"up exit {done.code}: {done.stderr.strip()}"),
            (computing is not None, "the slow statement ran while the readers ran"),
            (holder.get("pid") == up.pid, f"lock status names the run's pid {up.pid}: {lock}"),
            (status_holder.get("pid") == up.pid, f"status names the run's pid: {status_holder}"),
            (bool(holder.get("acquired_at")), "lock status says since when"),
            (
                last_run.get("run_id") == holder.get("run_id") and last_run.get("outcome") is None,
                f"status shows that run in progress: {last_run}",
            ),
            (
                [a.get("version") for a in running] == [3]
                and running[0].get("run_id") == holder.get("run_id"),
                f"history shows the run at step 3: {running}",
            ),
        ]
        for args in READERS:
            took, base = during[args].elapsed, idle[args]
            expectations.append(
                (
                    during[args].code == 0 and took <= 2 * base + READER_SLACK_S,
                    f"`{' '.join(args)}` took {took:.2f} s during the run (idle {base:.2f} s), "
                    f"exit {during[args].code}",
                )
            )
        judge(record, state, expectations)


def _all_at_once(ws):
    """The three reading commands, started together."""
    return {args: ws.spawn(*args) for args in READERS}


def _json(done):
    try:
        return done.json()
    except ValueError:
        return None

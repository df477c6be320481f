"""Ctrl-C and SIGTERM while a migration runs a long statement.

An operator (or a service manager) stops a run: the statement is interrupted at once, the
command exits 130 (SIGINT) or 143 (SIGTERM) with one line, the attempt is recorded as
interrupted in both journals, the run's backup is settled (verified or removed), and the
lock is free.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.live import migration_sets
from tests.live.conftest import SLOW_STATEMENT_S
from tests.live.harness import RATE, end_state, judge, one_line, wait_until_computing

pytestmark = pytest.mark.live

INTO_STATEMENT_S = 2.0
PROMPT_S = 1.5  # the command must be gone this soon after the signal
# The statement is made twice the usual length, so that whatever the machine's load since
# the calibration, seconds of it remain after the signal: an exit within PROMPT_S is the
# interruption's doing, not the statement's end.
LENGTH_FACTOR = 2


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
class TestInterruptLongStatement:
    def test_interrupt_is_prompt_and_recorded(self, ws, writers, record, slow_rows, signum, code):
        """A signal 2 s into a long (~10 s) statement: exit 130/143 at once, one line, the attempt
        interrupted in both journals, the backup settled, the lock free."""
        ws.prepare(migration_sets.slow(slow_rows * LENGTH_FACTOR))
        runs_before = _run_ids(ws)
        writer = writers(rate=RATE)
        up = ws.spawn("up", lock_timeout=30)
        started = _wait_for_run_started_new(ws, runs_before)
        # The slow statement is the only long computation of the run: wait until the
        # process burns CPU (not a lock wait), then let it run 2 s into the statement.
        computing = wait_until_computing(up.pid)
        if computing is not None:
            time.sleep(max(0.0, INTO_STATEMENT_S - 0.5))
        ended_early = up.proc.poll() is not None
        sent = up.signal(signum) if not ended_early else time.perf_counter()
        done = up.wait(timeout=60)
        gone_after = (up.ended_at or time.perf_counter()) - sent
        time.sleep(0.3)
        state = end_state(ws, writer, outputs=[done.output])
        run_id = started
        history = _json(ws.run("history", "--json"))
        backups = _json(ws.run("backup", "list", "--json")) or []
        lock = _json(ws.run("lock", "status", "--json")) or {}
        attempts = [a for a in history or [] if a.get("run_id") == run_id]
        interrupted = [a.get("version") for a in attempts if a.get("outcome") == "interrupted"]
        recorded = {
            name: [
                e["kind"]
                for e in events
                if e["run_id"] == run_id
                and (
                    e["kind"] == "attempt_interrupted"
                    or (e["kind"] == "run_finished" and e["data"].get("outcome") == "interrupted")
                )
            ]
            for name, events in (("table", ws.table_events()), ("jsonl", ws.jsonl_events()))
        }
        unsettled = [b["id"] for b in backups if b.get("run_id") == run_id and not b["verified"]]
        listed = {b["id"] for b in backups}
        on_disk = {p.rsplit(".sqlite", 1)[0] for p in ws.backup_files()}
        stray = sorted(p.name for p in ws.backups.glob("*.tmp")) if ws.backups.is_dir() else []
        record["run"] = done.brief()
        record["exit_after_signal_s"] = round(gone_after, 2)
        record["statement_started_after_s"] = computing
        record["attempts"] = attempts
        record["interrupted_versions"] = interrupted
        record["recorded"] = recorded
        record["backups_of_run"] = [b for b in backups if b.get("run_id") == run_id]
        recover = ws.run("recover")
        after = _json(ws.run("backup", "list", "--json")) or []
        record["unverified_after_recover"] = [
            b["id"] for b in after if b.get("run_id") == run_id and not b["verified"]
        ]
        record["recover"] = recover.brief()
        judge(
            record,
            state,
            [
                (run_id is not None, "the run started (run_started in the JSONL)"),
                (
                    not ended_early,
                    f"the run ended before the signal (exit {done.code}): {done.stderr.strip()}",
                ),
                (computing is not None, "the slow statement started (the process computed)"),
                (done.code == code, f"exit {done.code}, expected {code}"),
                (
                    gone_after < PROMPT_S,
                    f"exited {gone_after:.2f} s after the signal (the statement runs "
                    f"~{SLOW_STATEMENT_S * LENGTH_FACTOR:.0f} s)",
                ),
                (one_line(done.stderr), f"one line on stderr: {done.stderr.strip()!r}"),
                (
                    bool(interrupted) and not [a for a in attempts if a["outcome"] == "applied"],
                    f"history shows the run's attempt interrupted (none applied): {attempts}",
                ),
                (
                    bool(recorded["table"]) and recorded["table"] == recorded["jsonl"],
                    f"the interruption is recorded in both journals: {recorded}",
                ),
                (not unsettled, f"backups still unverified: {unsettled}"),
                (listed <= on_disk, f"listed backups missing on disk: {listed - on_disk}"),
                (not stray, f"unfinished backup files left: {stray}"),
                (not lock.get("held"), f"the lock is free: {lock}"),
            ],
        )


def _run_ids(ws) -> set[str]:
    return {e["run_id"] for e in ws.jsonl_events() if e["kind"] == "run_started"}


def _wait_for_run_started_new(ws, known: set[str], timeout: float = 20.0) -> str | None:
    """The run id of a run started after `known` (None if none within `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _run_ids(ws) - known
        if new:
            return new.pop()
        time.sleep(0.02)
    return None


def _json(done):
    try:
        return json.loads(done.stdout)
    except ValueError:
        return None

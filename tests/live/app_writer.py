"""An application writer: a stand-in for the program whose database schemalog migrates.

Run as a script by the live tests (`python tests/live/app_writer.py --database app.db ...`).
It opens the database like an ordinary application would (plain sqlite3, a busy timeout of a
few seconds, the journal mode it is told), then commits one small transaction after another
into its own table at a target rate, until SIGTERM (or SIGINT).

What it promises the tests:

- every row id it logs (one line `id wall_time latency_s` per commit, appended to `--log` and
  flushed at once) is a row whose COMMIT returned successfully to this process; ids are its
  own counter (1, 2, ...), never reused, so a row that disappeared cannot be "replaced" by a
  later one with the same id;
- a busy database is retried the way a real application does (SQLITE_BUSY after the busy
  timeout: roll back, back off 10 ms, try the same row again), and each such error is
  counted; any other error is counted by message and retried after 50 ms;
- on SIGUSR1 the next transaction is held open for `--hold-seconds` (a long write
  transaction of the application); `<log>.holding` is created once it holds the write lock
  and `<log>.held` once it committed;
- on SIGTERM it finishes the transaction in hand, then writes `--summary` (JSON: rows
  committed, busy errors, other errors, latency p50/p99/max in seconds, achieved rate) and
  exits 0.

Latency is measured from the first attempt at a row to the return of its COMMIT, retries
included: it is how long the application waited for that commit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

TABLE = "app_events"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, ts REAL NOT NULL)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True, type=Path)
    p.add_argument("--log", required=True, type=Path, help="committed ids, one per line")
    p.add_argument("--summary", required=True, type=Path, help="JSON summary written at exit")
    p.add_argument("--rate", type=float, default=100.0, help="target transactions per second")
    p.add_argument("--journal-mode", choices=("delete", "wal"), default="delete")
    p.add_argument("--busy-timeout-ms", type=int, default=3000)
    p.add_argument("--hold-seconds", type=float, default=8.0)
    p.add_argument("--create-table", action="store_true", help="create the table if missing")
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop by itself after this")
    return p


def percentile(values: list[float], fraction: float) -> float | None:
    """The `fraction` percentile (nearest rank) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


class Writer:
    """The commit loop and its counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = False
        self.hold_next = False
        self.next_id = 1
        self.committed = 0
        self.busy_errors = 0
        self.other_errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.started = time.time()
        self.log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the loop)
        self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.args.database, isolation_level=None, timeout=0)
        conn.execute(f"PRAGMA busy_timeout = {int(self.args.busy_timeout_ms)}")
        mode = conn.execute(f"PRAGMA journal_mode = {self.args.journal_mode}").fetchone()[0]
        if mode.lower() != self.args.journal_mode:
            sys.exit(f"app_writer: journal mode is {mode}, wanted {self.args.journal_mode}")
        if self.args.create_table:
            conn.execute(CREATE)
        return conn

    # -- one transaction -----------------------------------------------------------

    def _commit_one(self, row_id: int, hold: float) -> bool:
        """Try to commit row `row_id` once; True when its COMMIT returned."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                f"INSERT INTO {TABLE} (id, payload, ts) VALUES (?, ?, ?)",
                (row_id, f"row {row_id} from pid {os.getpid()}", time.time()),
            )
            if hold:
                Path(f"{self.args.log}.holding").touch()
                time.sleep(hold)
            conn.execute("COMMIT")
            return True
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                self.busy_errors += 1
                delay = 0.01
            else:
                self.other_errors[text] = self.other_errors.get(text, 0) + 1
                delay = 0.05
        except sqlite3.Error as exc:
            text = f"{type(exc).__name__}: {exc}"
            self.other_errors[text] = self.other_errors.get(text, 0) + 1
            delay = 0.05
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                key = f"rollback: {exc}"
                self.other_errors[key] = self.other_errors.get(key, 0) + 1
        time.sleep(delay)
        return False

    def run(self) -> None:
        """Commit rows at the target rate until asked to stop."""
        interval = 1.0 / self.args.rate
        deadline = self.started + self.args.max_seconds
        due = time.monotonic()
        while not self.stop and time.time() < deadline:
            holding = self.hold_next
            hold = self.args.hold_seconds if holding else 0.0
            self.hold_next = False
            row_id = self.next_id
            first_try = time.perf_counter()
            while not self._commit_one(row_id, hold):
                if hold and Path(f"{self.args.log}.holding").exists():
                    hold = 0.0  # it held the lock once already; now just commit the row
                if self.stop or time.time() >= deadline:
                    return  # this row was never committed: it is not logged
            latency = time.perf_counter() - first_try
            self.next_id += 1
            self.committed += 1
            self.latencies.append(latency)
            self.log.write(f"{row_id} {time.time():.6f} {latency:.6f}\n")
            self.log.flush()
            if holding:
                Path(f"{self.args.log}.held").touch()
            due += interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            elif pause < -1.0:  # far behind (the database was busy): do not burst to catch up
                due = time.monotonic()

    def summary(self) -> dict:
        """The JSON summary (see the module docstring)."""
        elapsed = time.time() - self.started
        return {
            "pid": os.getpid(),
            "journal_mode": self.args.journal_mode,
            "target_rate": self.args.rate,
            "rows_committed": self.committed,
            "last_id": self.next_id - 1,
            "busy_errors": self.busy_errors,
            "other_errors": self.other_errors,
            "elapsed_s": round(elapsed, 3),
            "achieved_rate": round(self.committed / elapsed, 1) if elapsed > 0 else None,
            "latency_p50_s": percentile(self.latencies, 0.50),
            "latency_p99_s": percentile(self.latencies, 0.99),
            "latency_max_s": max(self.latencies) if self.latencies else None,
        }


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    writer = Writer(args)

    def stop(signum: int, frame: object) -> None:
        writer.stop = True

    def hold(signum: int, frame: object) -> None:
        writer.hold_next = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, hold)
    Path(f"{args.log}.ready").touch()
    try:
        writer.run()
    finally:
        writer.log.close()
        writer.conn.close()
        tmp = args.summary.with_name(args.summary.name + ".tmp")
        tmp.write_text(json.dumps(writer.summary(), indent=2), encoding="utf-8")
        os.replace(tmp, args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark of the journal: appends, reads with chain checks, and replay.

Run: `.venv/bin/python bench/journal_bench.py [--json] [--scale 0.1] [--dir PATH]`.

Measures, on a temporary directory (default: the system temp dir; `--dir` to
choose the disk), the median of several repetitions of:

- `Journal.append` outside transactions, durability `normal` and `full`
  (each append is one JSONL write and one SQLite commit);
- `Journal.append` of many events inside one transaction, one commit;
- reading + decoding + chain-checking 100k events from the JSONL and from the table;
- `replay()` of 100k events (target: under 1 s).

Prints a Markdown table, or one JSON document with `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemalog.journal.chain import find_break
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import replay
from schemalog.journal.table import TableStore


def _open(directory: Path, name: str, durability: str = "normal") -> Journal:
    """A journal over a fresh database and JSONL named `name` in `directory`."""
    conn = sqlite3.connect(directory / f"{name}.db", isolation_level=None)
    return Journal(conn, JsonlStore(directory / f"{name}.db.journal.jsonl", durability=durability))


def _close(journal: Journal) -> None:
    journal.close()
    journal.conn.close()


def realistic_drafts(n: int) -> Iterator[Draft]:
    """`n` drafts shaped like real runs: lock, backup, step started/applied pairs, release."""
    i = version = 0
    run = 0
    while True:
        run += 1
        run_id = f"run-{run:06d}"
        cycle = [
            Draft(run_id, Kind.RUN_STARTED, None, {"command": "up", "argv": ["up"]}),
            Draft(
                run_id, Kind.LOCK_ACQUIRED, None, {"pid": 4242, "host": "bench", "command": "up"}
            ),
            Draft(
                run_id,
                Kind.BACKUP_TAKEN,
                None,
                {
                    "id": f"b{run}",
                    "path": f"/var/backups/app.db.{run}",
                    "version": version,
                    "size": 1 << 20,
                    "sha256": "ab" * 32,
                    "verified": True,
                    "compression": "none",
                },
            ),
        ]
        for _ in range(3):
            version += 1
            meta = {"name": f"m{version:05d}_change", "direction": "up"}
            cycle.append(Draft(run_id, Kind.STEP_STARTED, version, meta))
            cycle.append(
                Draft(
                    run_id,
                    Kind.STEP_APPLIED,
                    version,
                    {
                        **meta,
                        "checksum": "cd" * 32,
                        "fingerprint_before": "ef" * 32,
                        "fingerprint_after": "01" * 32,
                        "duration_ms": 12,
                    },
                )
            )
        cycle += [
            Draft(run_id, Kind.BACKUP_REMOVED, None, {"id": f"b{run}"}),
            Draft(run_id, Kind.LOCK_RELEASED, None, {}),
            Draft(run_id, Kind.RUN_FINISHED, None, {"outcome": "succeeded"}),
        ]
        for draft in cycle:
            if i == n:
                return
            yield draft
            i += 1


def _median(fn: Callable[[], float], reps: int) -> tuple[float, list[float]]:
    """Median and all timings of `reps` calls of `fn`, which returns its own elapsed seconds."""
    times = [fn() for _ in range(reps)]
    return statistics.median(times), times


def bench_append_outside(directory: Path, n: int, durability: str) -> Callable[[], float]:
    """One repetition: `n` appends, each outside a transaction, into fresh stores."""
    counter = iter(range(10**9))

    def run() -> float:
        journal = _open(directory, f"outside-{durability}-{next(counter)}", durability)
        drafts = list(realistic_drafts(n))
        journal.table.ensure()
        start = time.perf_counter()
        for draft in drafts:
            journal.append(draft)
        elapsed = time.perf_counter() - start
        _close(journal)
        return elapsed

    return run


def bench_append_in_transaction(directory: Path, n: int) -> Callable[[], float]:
    """One repetition: `n` appends inside one transaction, then COMMIT (and the JSONL write)."""
    counter = iter(range(10**9))

    def run() -> float:
        journal = _open(directory, f"tx-{next(counter)}")
        drafts = list(realistic_drafts(n))
        journal.table.ensure()
        start = time.perf_counter()
        journal.begin()
        for draft in drafts:
            journal.append(draft)
        journal.commit()
        journal.sync()
        elapsed = time.perf_counter() - start
        _close(journal)
        return elapsed

    return run


def build_big_journal(directory: Path, n: int) -> Journal:
    """A journal holding `n` realistic events in both stores (written in one transaction)."""
    journal = _open(directory, "big")
    journal.begin()
    journal.append_many(list(realistic_drafts(n)))
    journal.commit()
    journal.sync()
    return journal


def bench_read_check(read: Callable[[], tuple], n: int) -> Callable[[], float]:
    """One repetition: read + decode every event, then verify the whole chain."""

    def run() -> float:
        start = time.perf_counter()
        events = read()
        brk = find_break(events)
        elapsed = time.perf_counter() - start
        assert brk is None and len(events) == n, (brk, len(events))
        return elapsed

    return run


def bench_replay(events: tuple, n: int) -> Callable[[], float]:
    """One repetition: replay every event."""

    def run() -> float:
        start = time.perf_counter()
        state = replay(events)
        elapsed = time.perf_counter() - start
        assert state.seq == n
        return elapsed

    return run


def run_all(directory: Path, scale: float) -> list[dict]:
    """Every measurement, as a list of result rows."""

    def n_of(base: int) -> int:
        return max(10, int(base * scale))

    results: list[dict] = []

    def record(name: str, n: int, unit: str, reps: int, fn: Callable[[], float]) -> None:
        median, times = _median(fn, reps)
        results.append(
            {
                "name": name,
                "n": n,
                "unit": unit,
                "reps": reps,
                "median_s": median,
                "min_s": min(times),
                "max_s": max(times),
                "per_second": n / median if median else None,
            }
        )
        print(f"  {name}: {median:.3f} s", file=sys.stderr)

    n_append = n_of(2000)
    record(
        "append outside tx, durability normal",
        n_append,
        "appends",
        3,
        bench_append_outside(directory, n_append, "normal"),
    )
    record(
        "append outside tx, durability full",
        n_append,
        "appends",
        3,
        bench_append_outside(directory, n_append, "full"),
    )
    n_tx = n_of(10_000)
    record(
        "append inside one tx (one commit)",
        n_tx,
        "appends",
        5,
        bench_append_in_transaction(directory, n_tx),
    )

    n_big = n_of(100_000)
    big = build_big_journal(directory, n_big)
    jsonl = JsonlStore(big.jsonl.path)
    table = TableStore(big.conn)
    record(
        "read + decode + chain check, JSONL",
        n_big,
        "events",
        3,
        bench_read_check(lambda: jsonl.read().events, n_big),
    )
    record(
        "read + decode + chain check, table",
        n_big,
        "events",
        3,
        bench_read_check(lambda: table.read().events, n_big),
    )
    events = table.read().events
    record("replay()", n_big, "events", 5, bench_replay(events, n_big))
    _close(big)
    return results


def markdown(results: list[dict]) -> str:
    """The results as a small Markdown table."""
    lines = [
        "| measurement | n | reps | median | per second |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['n']:,} {r['unit']} | {r['reps']} | "
            f"{r['median_s']:.3f} s | {r['per_second']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every event count (e.g. 0.1)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="directory for the temp files")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="journal-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        results = run_all(directory, args.scale)
    env = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "dir": str(args.dir or tempfile.gettempdir()),
        "scale": args.scale,
    }
    if args.json:
        json.dump({"environment": env, "results": results}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(
            f"journal benchmark — Python {env['python']}, SQLite {env['sqlite']}, "
            f"{env['cpus']} CPUs, files in {env['dir']}\n"
        )
        print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A measurement, not a test: how long the application's commits wait while schemalog runs.

    python -m tests.live.measure [--rate 100] [--migrations 50] [--ballast-mb 10]
                                 [--modes rollback,wal] [--repeat 1] [--json FILE]

For each journal mode: a ~10 MB database at version 1, the application writer committing at
`--rate` tx/s (0: no application), 2 s of idle commits (the baseline), then `up` of `--migrations` small
migrations (tables with rows, indexes, columns, a rebuild every tenth), then 1 s more. It
prints the run's exit code and length, and the latency (p50/p99/max) of the commits that
were waiting during the run against the idle baseline. The machine is shared: figures vary
from run to run; repeat and compare medians.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tests.live import migration_sets
from tests.live.harness import AppWriter, Workspace, percentile


def measure_once(mode: str, *, rate: float, migrations: int, ballast_mb: float, root: Path) -> dict:
    """One run in `mode`; returns its figures."""
    ws = Workspace(root / f"{mode}-{time.time_ns()}", mode)
    ws.prepare(migration_sets.many(migrations), ballast_rows=int(ballast_mb * 1000))
    size_mb = ws.db.stat().st_size / 1e6
    if rate <= 0:  # no application: the run's own length, for comparison
        done = ws.run("up", lock_timeout=60)
        empty = {"commits": 0, "p50_s": None, "p99_s": None, "max_s": None}
        idle, during, summary = [], empty, {}
    else:
        writer = AppWriter(ws, rate=rate)
        try:
            writer.start()
            idle_start = time.time()
            time.sleep(2.0)
            idle_end = time.time()
            done = ws.run("up", lock_timeout=60)
            time.sleep(1.0)
            summary = writer.stop()
        finally:
            writer.kill()
        idle = [lat for _, t, lat in writer.commits() if idle_start <= t <= idle_end]
        during = writer.latency_during(done.started, done.finished)
    return {
        "mode": mode,
        "rate": rate,
        "database_mb": round(size_mb, 1),
        "migrations": migrations,
        "exit": done.code,
        "stderr": done.stderr.strip()[:300],
        "run_s": round(done.elapsed, 3),
        "user_version": ws.user_version(),
        "idle": {
            "commits": len(idle),
            "p50_s": percentile(idle, 0.5),
            "p99_s": percentile(idle, 0.99),
            "max_s": max(idle) if idle else None,
        },
        "during_run": during,
        "writer_busy_errors": summary.get("busy_errors"),
        "writer_achieved_rate": summary.get("achieved_rate"),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--migrations", type=int, default=50)
    p.add_argument("--ballast-mb", type=float, default=10.0)
    p.add_argument("--modes", default="rollback,wal")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="schemalog-measure-") as tmp:
        for _ in range(args.repeat):
            for mode in args.modes.split(","):
                r = measure_once(
                    mode,
                    rate=args.rate,
                    migrations=args.migrations,
                    ballast_mb=args.ballast_mb,
                    root=Path(tmp),
                )
                results.append(r)
                d, i = r["during_run"], r["idle"]
                print(
                    f"{mode:8} {r['database_mb']:5.1f} MB  {args.rate:.0f} tx/s  up exit {r['exit']} "
                    f"in {r['run_s']:.2f} s (v{r['user_version']})  "
                    f"commits waiting during the run: {d['commits']}, "
                    f"p50 {_ms(d['p50_s'])} ms, p99 {_ms(d['p99_s'])} ms, max {_ms(d['max_s'])} ms  "
                    f"| idle p50 {_ms(i['p50_s'])} ms, p99 {_ms(i['p99_s'])} ms, "
                    f"max {_ms(i['max_s'])} ms  | busy errors {r['writer_busy_errors']}"
                    + (f"\n         {r['stderr']}" if r["exit"] else "")
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

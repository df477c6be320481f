"""`schemalog check` on growing prefixes of the Grocy-like set (issue 13: a linear `check`).

For each count (62, 124 and 248 by default, as in the issue; 15, 31, 62 with `--quick`),
the first `count` migrations of `grocy.py` are written in schemalog's format and
`schemalog --database <none> --migrations DIR check --all --scratch-dir ...` is timed as a
whole process: with no database to copy, `check` tests every migration from an empty
database (up, verify, down, same schema, up again). Rounds run the counts in a shuffled
order; reported: the median per count, the time per migration, and t(largest)/t(middle)
(target ≤ 2.6 for 248/124; a linear check gives 2.0, a quadratic one 4.0) — in wall time
and, steadier on a shared machine, in the process's CPU time (user + system).

Standalone: `python bench/check_cost.py [--quick] [--counts 62,124,248] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import progress, summarize, timed_run
from tools import BENCH, Schemalog, env_for_runs

COUNTS = (62, 124, 248)
QUICK_COUNTS = (15, 31, 62)


def run(
    work: Path, counts: tuple[int, ...], runs: int, log: Callable[[str], None], timeout=3600
) -> dict:
    """Time `check --all` for each count; raise RuntimeError when a check fails."""
    from grocy import grocy_set

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ms = grocy_set(max(counts), cache_dir=BENCH / "work" / "sets")
    folders = {}
    for n in counts:
        folder = work / f"m-{n}"
        folder.mkdir()
        Schemalog().write(ms[:n], folder, folder / "unused.db")
        folders[n] = folder
    scratch = work / "scratch"
    scratch.mkdir()
    times: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    rng = random.Random(248)
    argv_of = {}
    for rep in range(runs):
        order = list(counts)
        rng.shuffle(order)
        for n in order:
            db = work / f"absent-{n}.db"  # never created: check tests from an empty database
            argv = [
                *Schemalog().base(folders[n], db),
                "check",
                "--all",
                "--scratch-dir",
                str(scratch),
            ]
            argv_of[n] = " ".join(argv)
            log_file = work / f"check-{n}-{rep}.log"
            r = timed_run(argv, work, log_file, env_for_runs(), timeout=timeout)
            text = log_file.read_text(errors="replace")
            if r.returncode != 0 or f"{n} migration(s) ok" not in text:
                msg = f"check of {n} migrations exited {r.returncode}: {text.strip()[-400:]}"
                raise RuntimeError(msg)
            times[n].append(r.wall)
            cpu[n].append(r.user + r.system)
            log(f"check: {n} migrations in {r.wall:.1f}s (round {rep + 1}/{runs})")
    out = {"counts": {}, "runs": runs}
    for n in counts:
        s = summarize(times[n])
        out["counts"][n] = {**s, "per_migration_s": s["median"] / n, "times": times[n]}
        out["counts"][n]["cpu_s"] = summarize(cpu[n])["median"]
        out["counts"][n]["argv"] = argv_of[n]
    ordered = sorted(counts)
    if len(ordered) >= 2:
        a, b = ordered[-2], ordered[-1]
        out["ratio"] = {
            "larger": b,
            "smaller": a,
            "value": out["counts"][b]["median"] / out["counts"][a]["median"],
            "cpu": out["counts"][b]["cpu_s"] / out["counts"][a]["cpu_s"],
            "linear": b / a,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="15, 31, 62 migrations")
    p.add_argument("--counts", help="comma-separated counts (default 62,124,248)")
    p.add_argument("--runs", type=int, default=1, help="rounds (median of these)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    counts = QUICK_COUNTS if args.quick else COUNTS
    if args.counts:
        counts = tuple(int(c) for c in args.counts.split(","))

    result = run(BENCH / "work" / "check", counts, args.runs, progress)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        from costs import render_check

        print("\n".join(render_check(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Costs that must not grow with the journal (issue 13): `status`, a no-op `up`, start-up.

On databases at the head of the first 200 migrations of the Grocy-like set (`grocy.py`)
with journals of about 406 (the first `up` alone), 5k, 20k and 100k events
(`history.build_history`), measures:

- **cold commands**, each a whole process timed from spawn to exit, interleaved in a
  freshly shuffled order each round: `schemalog status --json` and a no-op `schemalog up`
  at every journal length, plain `schemalog status` at the shortest, and the reference
  `python -c "import sqlite3"` (the same interpreter, with the venv's site-packages).
  Reported: medians, the ratios at the longest journal to the shortest (target ≤ 1.3) and
  `status` minus the reference (target ≤ 0.1 s). An untimed first round checks that
  `status --json` finds the journals consistent with nothing pending, and that `up` has
  nothing to do; the event count is checked again at the end (a no-op writes nothing).
- **the warm, in-process no-op `upgrade()`** (`python bench/growth.py probe ...`, one
  fresh process per journal length): `Migrator(Settings(database=..., migrations=...))`
  built once, `upgrade()` called once untimed, then up to `calls` times (stopping after
  `budget` seconds, at least 3 calls); the median in ms (target ≤ 10 ms at 100k events).
  The same process times the bare check an application could do instead: connect,
  `PRAGMA user_version`, close.

Standalone: `python bench/growth.py [--quick] [--runs N] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import progress, summarize, timed_run
from tools import BENCH, Schemalog, env_for_runs

POINTS = (406, 5_000, 20_000, 100_000)
QUICK_POINTS = (406, 2_000, 5_000)
FILES = 200  # migration files, as in the issue


def write_grocy_folder(folder: Path, count: int, cache: Path) -> Path:
    """`folder` holding the first `count` Grocy-like migrations in schemalog's format."""
    from grocy import grocy_set

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    Schemalog().write(grocy_set(count, cache_dir=cache)[:count], folder, folder / "unused.db")
    return folder


def build_points(
    work: Path,
    migrations: Path,
    points: tuple[int, ...],
    *,
    mode: str,
    log: Callable[[str], None],
) -> dict[int, dict]:
    """{target events: History as a dict} — one database per journal length."""
    from history import build_history

    out = {}
    for target in points:
        log(f"growth: building a journal of ~{target} events")
        h = build_history(work / f"journal-{target}", migrations, target, mode=mode, log=log)
        out[target] = h
    return out


def _status_doc(argv: list[str], cwd: Path) -> dict:
    r = subprocess.run(
        argv, cwd=cwd, env=env_for_runs(), capture_output=True, text=True, timeout=1800
    )
    if r.returncode != 0:
        msg = f"`{' '.join(argv[-2:])}` exited {r.returncode}: {r.stderr.strip()[-300:]}"
        raise RuntimeError(msg)
    return json.loads(r.stdout)


def cold_commands(histories: dict, runs: int, log: Callable[[str], None]) -> dict:
    """Interleaved whole-process timings of status/no-op up per journal length (see module)."""
    from history import count_events

    py = sys.executable
    scratch = next(iter(histories.values())).database.parent
    commands: dict[str, tuple[list[str], Path]] = {
        "python -c 'import sqlite3'": ([py, "-c", "import sqlite3"], scratch),
    }
    checks = {}
    smallest = min(histories)
    for target, h in histories.items():
        base = Schemalog().base(h.migrations, h.database)
        commands[f"status --json @{target}"] = ([*base, "status", "--json"], h.database.parent)
        commands[f"up (no-op) @{target}"] = ([*base, "up"], h.database.parent)
        if target == smallest:
            commands[f"status @{target}"] = ([*base, "status"], h.database.parent)
        doc = _status_doc([*base, "status", "--json"], h.database.parent)
        checks[target] = {
            "events": h.events,
            "consistent": doc.get("journal", {}).get("consistent"),
            "pending": doc.get("pending"),
            "version": doc.get("version"),
            "needs_recovery": doc.get("needs_recovery"),
        }
        if not checks[target]["consistent"] or doc.get("pending") or doc.get("needs_recovery"):
            msg = f"the {target}-event database is not a healthy, migrated one: {checks[target]}"
            raise RuntimeError(msg)
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    rng = random.Random(13)
    logs = scratch.parent / "cold-logs"
    logs.mkdir(exist_ok=True)
    for rep in range(runs + 1):  # round 0 is an untimed warm-up
        order = list(commands)
        rng.shuffle(order)
        for name in order:
            argv, cwd = commands[name]
            log_file = logs / f"{_slug(name)}.log"
            r = timed_run(argv, cwd, log_file, env_for_runs())
            if r.returncode != 0:
                tail = log_file.read_text(errors="replace").strip()[-300:]
                msg = f"`{name}` exited {r.returncode}: {tail}"
                raise RuntimeError(msg)
            if name.startswith("up") and "nothing to do" not in log_file.read_text():
                msg = f"`{name}` was not a no-op: {log_file.read_text()[-300:]}"
                raise RuntimeError(msg)
            if rep:
                times[name].append(r.wall)
                cpu[name].append(r.user + r.system)
        if rep:
            log(f"growth: cold round {rep}/{runs} done")
    for target, h in histories.items():
        checks[target]["events_after"] = count_events(h.database)
    out = {"commands": {}, "checks": checks}
    for name, ts in times.items():
        out["commands"][name] = {**summarize(ts), "times": ts, "argv": " ".join(commands[name][0])}
        out["commands"][name]["cpu_s"] = summarize(cpu[name])["median"]
    big = max(histories)
    med = {name: r["median"] for name, r in out["commands"].items()}
    ref = med["python -c 'import sqlite3'"]
    out["summary"] = {
        "smallest": smallest,
        "largest": big,
        "status_ratio": med[f"status --json @{big}"] / med[f"status --json @{smallest}"],
        "up_ratio": med[f"up (no-op) @{big}"] / med[f"up (no-op) @{smallest}"],
        "status_cpu_ratio": _cpu(out, f"status --json @{big}", f"status --json @{smallest}"),
        "up_cpu_ratio": _cpu(out, f"up (no-op) @{big}", f"up (no-op) @{smallest}"),
        "import_sqlite3_s": ref,
        "status_minus_import_s": med[f"status @{smallest}"] - ref,
        "status_json_minus_import_s": med[f"status --json @{smallest}"] - ref,
    }
    return out


def _cpu(out: dict, a: str, b: str) -> float:
    return out["commands"][a]["cpu_s"] / out["commands"][b]["cpu_s"]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


# --------------------------------------------------------------------------------------
# The warm, in-process no-op upgrade()


def warm_upgrade(histories: dict, calls: int, budget: float, log: Callable[[str], None]) -> dict:
    """{target: probe result}: the in-process no-op `upgrade()` in a fresh process each."""
    out = {}
    for target, h in histories.items():
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "probe",
            "--database",
            str(h.database),
            "--migrations",
            str(h.migrations),
            "--calls",
            str(calls),
            "--budget",
            str(budget),
        ]
        r = subprocess.run(
            argv,
            cwd=h.database.parent,
            env=env_for_runs(),
            capture_output=True,
            text=True,
            timeout=budget * 4 + 600,
        )
        if r.returncode != 0:
            out[target] = {"skipped": f"probe exited {r.returncode}: {r.stderr.strip()[-300:]}"}
            continue
        out[target] = json.loads(r.stdout)
        log(
            f"growth: warm upgrade() @{target}: {out[target]['upgrade_ms']['median']:.1f} ms "
            f"(n={out[target]['upgrade_ms']['n']})"
        )
    return out


def probe(database: Path, migrations: Path, calls: int, budget: float) -> dict:
    """Time `upgrade()` on one Migrator (built once) and the bare `user_version` read."""
    import sqlite3

    t0 = time.perf_counter()
    from schemalog import Migrator
    from schemalog.engine.base.settings import Settings

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = Migrator(Settings(database=database, migrations=migrations))
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = m.upgrade()
    first_s = time.perf_counter() - t0
    if not first.plan.empty:
        msg = f"upgrade() was not a no-op on {database}"
        raise SystemExit(msg)
    times = []
    deadline = time.perf_counter() + budget
    while len(times) < calls and (len(times) < 3 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        m.upgrade()
        times.append((time.perf_counter() - t0) * 1000)
    ref = []
    for _ in range(max(calls, 50)):
        t0 = time.perf_counter()
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA user_version").fetchone()
        conn.close()
        ref.append((time.perf_counter() - t0) * 1000)
    return {
        "import_s": import_s,
        "construct_s": build_s,
        "first_call_s": first_s,
        "upgrade_ms": {**summarize(times), "times": times},
        "user_version_ms": summarize(ref),
    }


# --------------------------------------------------------------------------------------


def run(work: Path, *, quick: bool, runs: int, calls: int, budget: float, mode: str, log) -> dict:
    """Everything above: build the databases, time the cold commands and the warm call."""
    points = QUICK_POINTS if quick else POINTS
    migrations = write_grocy_folder(work / "migrations", FILES, BENCH / "work" / "sets")
    histories = build_points(work, migrations, points, mode=mode, log=log)
    return {
        "files": FILES,
        "points": {t: h.as_dict() for t, h in histories.items()},
        "cold": cold_commands(histories, runs, log),
        "warm": warm_upgrade(histories, calls, budget, log),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    pr = sub.add_parser("probe", help="(internal) time upgrade() in this process; print JSON")
    pr.add_argument("--database", type=Path, required=True)
    pr.add_argument("--migrations", type=Path, required=True)
    pr.add_argument("--calls", type=int, default=50)
    pr.add_argument("--budget", type=float, default=30.0)
    p.add_argument("--quick", action="store_true", help="journals of 406, 2k, 5k events; 3 runs")
    p.add_argument("--runs", type=int, help="timed rounds of the cold commands (default 5)")
    p.add_argument("--calls", type=int, default=50, help="warm upgrade() calls (median)")
    p.add_argument("--budget", type=float, default=30.0, help="seconds of warm calls per journal")
    p.add_argument("--history", choices=("clone", "migrator"), default="clone")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    args = p.parse_args(argv)
    if args.cmd == "probe":
        print(json.dumps(probe(args.database, args.migrations, args.calls, args.budget)))
        return 0

    result = run(
        BENCH / "work" / "growth",
        quick=args.quick,
        runs=args.runs or (3 if args.quick else 5),
        calls=args.calls,
        budget=args.budget,
        mode=args.history,
        log=progress,
    )
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        from costs import render_growth

        print("\n".join(render_growth(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

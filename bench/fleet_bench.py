"""Benchmark of fleets: many tenant databases migrated by `schemalog fleet up`.

Run: `.venv/bin/python bench/fleet_bench.py [--tenants 1000] [--migrations 20]
[--shell-sample 100] [--runs 1] [--dir PATH] [--json]`.

Builds `--tenants` new, empty tenant databases and `--migrations` generated migrations
(bench/generate.py, the same typical-application sequence as bench/run.py), then measures
the wall time of migrating them all, each measurement on fresh databases:

- a shell loop of `schemalog --database DB up`, one process per database, as teams do today
  (on the first `--shell-sample` databases; its throughput is per database, so a sample
  measures it; `--shell-sample 0` runs it on every database);
- `schemalog fleet up --jobs 1`;
- `schemalog fleet up --jobs 2` (the scaling from 1 to 2 jobs);
- `schemalog fleet up` with the default `--jobs` (the CPU count), when that is not 1 or 2;
- `schemalog fleet up --jobs` twice the CPU count (small migrations wait on `fdatasync`
  more than on the CPU, so more jobs than CPUs overlap those waits);

and reports each one's throughput (databases per second), its ratio to the shell loop
(target: at least 10x) and to `--jobs 1`, and the peak memory of the fleet's whole process
tree (the fleet process plus its workers, sampled every 50 ms through /proc). Every run is
checked: all databases applied, each at the last version.

Prints a Markdown table, or one JSON document with `--json`; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
sys.path.insert(0, str(BENCH))

from generate import migration_set  # noqa: E402
from tools import Schemalog  # noqa: E402

SCHEMALOG = PROJECT / ".venv" / "bin" / "schemalog"
TIMEOUT = 3600  # seconds for one measured command: a hung run fails the benchmark


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def clean_env() -> dict[str, str]:
    """This environment without SCHEMALOG_* variables (the commands get flags only)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}


def fresh_tenants(root: Path, count: int) -> list[Path]:
    """`count` new, empty tenant databases in root/tenants (anything older is removed)."""
    directory = root / "tenants"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    paths = [directory / f"tenant-{i:05d}.db" for i in range(count)]
    for path in paths:
        path.write_bytes(b"")
    os.sync()
    return paths


def _tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants (0 once it is gone)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        child, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(child)
        rss[child] = int(fields[21]) * page
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, ()))
    return total


def timed(argv: list[str], cwd: Path, *, stdout: Path | None = None) -> tuple[float, int, float]:
    """Run `argv`; (wall seconds, exit code, peak MiB of its process tree)."""
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=clean_env(), stdout=out, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        if stdout:
            out.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        say(err.decode(errors="replace")[-2000:])
    return wall, proc.returncode, peak[0] / 2**20


def check_at(paths: list[Path], version: int) -> None:
    """Fail unless every database is at `version`."""
    for path in paths:
        with sqlite3.connect(path) as conn:
            got = conn.execute("PRAGMA user_version").fetchone()[0]
        if got != version:
            msg = f"{path} is at version {got}, expected {version}"
            raise SystemExit(msg)


def shell_loop(root: Path, migrations: Path, paths: list[Path]) -> tuple[float, float]:
    """A bash loop of `schemalog up`, one process per database: (wall, peak MiB)."""
    listing = root / "shell-list.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    script = (
        'while IFS= read -r db; do "$0" --database "$db" --migrations "$1" up >/dev/null '
        '|| exit 1; done < "$2"'
    )
    wall, code, peak = timed(
        ["bash", "-c", script, str(SCHEMALOG), str(migrations), str(listing)], root
    )
    if code != 0:
        raise SystemExit(f"the shell loop failed (exit {code})")
    return wall, peak


def fleet(root: Path, migrations: Path, paths: list[Path], jobs: int | None) -> tuple[float, float]:
    """`schemalog fleet up [--jobs N] @list --json`: (wall, peak MiB); checks the document."""
    listing = root / "fleet-list.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    journal = root / "fleet.journal.jsonl"
    journal.unlink(missing_ok=True)
    argv = [str(SCHEMALOG), "--migrations", str(migrations), "fleet", "up"]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    argv += ["--fleet-journal", str(journal), f"@{listing}", "--json"]
    doc_path = root / "fleet.json"
    wall, code, peak = timed(argv, root, stdout=doc_path)
    doc = json.loads(doc_path.read_text())
    if code != 0 or doc["summary"]["applied"] != len(paths):
        raise SystemExit(f"fleet up --jobs {jobs} did not apply every database: {doc['summary']}")
    return wall, peak


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--migrations", type=int, default=20)
    parser.add_argument(
        "--shell-sample",
        type=int,
        default=100,
        help="databases the shell loop migrates (0: all); its rate is per database",
    )
    parser.add_argument("--runs", type=int, default=1, help="repetitions (medians reported)")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if not SCHEMALOG.exists():
        say(f"{SCHEMALOG} does not exist: run `make venv`")
        return 2

    root = Path(tempfile.mkdtemp(prefix="fleet-bench-", dir=args.dir))
    try:
        migrations = root / "migrations"
        migrations.mkdir()
        Schemalog().write(migration_set(args.migrations), migrations, root / "unused.db")
        head = args.migrations
        sample = args.tenants if args.shell_sample <= 0 else min(args.shell_sample, args.tenants)

        variants: list[tuple[str, int | None]] = [("shell", None), ("jobs1", 1), ("jobs2", 2)]
        if cpu_count() not in (1, 2):
            variants.append(("default", None))
        # Small migrations wait on fdatasync, not on the CPU: more jobs than CPUs overlap it.
        variants.append(("overlap", 2 * cpu_count()))
        walls: dict[str, list[float]] = {name: [] for name, _ in variants}
        peaks: dict[str, list[float]] = {name: [] for name, _ in variants}
        for run in range(1, args.runs + 1):
            for name, jobs in variants:
                count = sample if name == "shell" else args.tenants
                paths = fresh_tenants(root, count)
                say(f"run {run}/{args.runs}: {name} on {count} databases x {head} migrations")
                if name == "shell":
                    wall, peak = shell_loop(root, migrations, paths)
                else:
                    wall, peak = fleet(root, migrations, paths, jobs)
                check_at(paths, head)
                walls[name].append(wall)
                peaks[name].append(peak)
                say(f"  {wall:.2f} s, {count / wall:.1f} databases/s, peak {peak:.0f} MiB")

        rows = []
        rate = {}
        for name, _ in variants:
            count = sample if name == "shell" else args.tenants
            wall = statistics.median(walls[name])
            rate[name] = count / wall
            rows.append(
                {
                    "variant": {
                        "shell": "shell loop of `schemalog up`",
                        "jobs1": "fleet up --jobs 1",
                        "jobs2": "fleet up --jobs 2",
                        "default": f"fleet up (default --jobs {cpu_count()})",
                        "overlap": f"fleet up --jobs {2 * cpu_count()} (2 x CPUs)",
                    }[name],
                    "databases": count,
                    "wall_s": round(wall, 3),
                    "databases_per_s": round(rate[name], 2),
                    "peak_mib": round(max(peaks[name]), 1),
                }
            )
        for row, (name, _) in zip(rows, variants, strict=True):
            row["vs_shell"] = round(rate[name] / rate["shell"], 2)
            row["vs_jobs1"] = round(rate[name] / rate["jobs1"], 2)
        best = max(rate[n] for n, _ in variants if n != "shell")
        doc = {
            "tenants": args.tenants,
            "migrations": head,
            "shell_sample": sample,
            "runs": args.runs,
            "machine": {
                "cpus": cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "platform": platform.platform(),
            },
            "results": rows,
            "scaling_1_to_2_jobs": round(rate["jobs2"] / rate["jobs1"], 2),
            "best_vs_shell": round(best / rate["shell"], 2),
            "target_vs_shell": 10,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"## Fleet: {args.tenants} tenant databases x {head} migrations "
        f"({cpu_count()} CPUs, SQLite {sqlite3.sqlite_version})\n"
    )
    print(
        "| variant | databases | wall (s) | databases/s | vs shell loop | vs --jobs 1 | peak memory (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['databases']} | {row['wall_s']:.2f} | "
            f"{row['databases_per_s']:.1f} | {row['vs_shell']:.1f}x | {row['vs_jobs1']:.2f}x | "
            f"{row['peak_mib']:.0f} |"
        )
    print(
        f"\nScaling from 1 to 2 jobs: {doc['scaling_1_to_2_jobs']:.2f}x. "
        f"Best fleet throughput vs the shell loop: {doc['best_vs_shell']:.1f}x (target >= 10x). "
        f"The shell loop ran on {sample} databases (its rate is per database); peak memory is "
        "the whole process tree's (fleet process and workers; for the shell loop, bash and "
        "one schemalog at a time)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

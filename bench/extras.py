"""Extra measurements: backup throughput, cold start, recovery, replay, peak memory.

Every measurement returns rows `{name, value, unit, ...}`; one that cannot run returns a
row with `skipped` saying why, never an exception. Reference numbers (cp, the SQLite
backup API, a bare interpreter) are always measured, so schemalog's numbers can be read
as ratios measured in the same run.

The schemalog hooks use only the CLI of the contract in DESIGN.md, except the replay of
100k events, which calls into the package lazily (`_schemalog_replay`). Where the package
grows the functions named there, the hooks start to measure; until then they are skipped
with a note. The harness runs under the project's venv, so `import journal` works once
the module exists.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from measure import fsync_path, reset_database, sync_tree, timed_run
from tools import Schemalog, env_for_runs

SIDECARS = Schemalog().sidecars

MIB = 1024 * 1024


@dataclass
class Context:
    """What the extras get from the harness."""

    work: Path  # scratch folder (bench/work/extras)
    source_db: Path  # the largest cached database of this run
    migrations: Path | None  # schemalog's folder for the largest migration count
    floor_migrations: Path | None  # the floor's folder for the same set
    runs: int
    schemalog_ok: bool  # False when the schemalog runner was skipped
    log: Callable[[str], None]


def _row(name: str, value: float | None, unit: str, **extra) -> dict:
    return {"name": name, "value": value, "unit": unit, **extra}


def _skipped(name: str, why: str) -> dict:
    return {"name": name, "value": None, "unit": "", "skipped": why}


def _median_of(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    times = [fn() for _ in range(runs)]
    return statistics.median(times), times


# --------------------------------------------------------------------------------------
# Backups


def backup_throughput(ctx: Context) -> list[dict]:
    """MiB/s of cp + fsync, Python's copy + fsync, `Connection.backup()`, and schemalog's."""
    src = ctx.source_db
    size = src.stat().st_size
    dest_dir = ctx.work / "backup"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "copy.db"
    rows = []

    def cp_fsync() -> float:
        dest.unlink(missing_ok=True)
        t0 = time.perf_counter()
        subprocess.run(["cp", str(src), str(dest)], check=True)
        fsync_path(dest)
        return time.perf_counter() - t0

    def py_copy() -> float:
        dest.unlink(missing_ok=True)
        t0 = time.perf_counter()
        shutil.copyfile(src, dest)
        fsync_path(dest)
        return time.perf_counter() - t0

    def sqlite_backup() -> float:
        dest.unlink(missing_ok=True)
        t0 = time.perf_counter()
        live = sqlite3.connect(src)
        out = sqlite3.connect(dest)
        live.backup(out)
        out.close()
        live.close()
        fsync_path(dest)
        return time.perf_counter() - t0

    for name, fn, cmd in (
        ("backup: cp + fsync", cp_fsync, f"cp {src.name} copy.db; fsync"),
        ("backup: shutil.copyfile + fsync", py_copy, "shutil.copyfile + os.fsync"),
        ("backup: sqlite3 Connection.backup()", sqlite_backup, "live.backup(dest) + fsync"),
    ):
        med, times = _median_of(fn, ctx.runs)
        rows.append(_row(name, size / MIB / med, "MiB/s", seconds=med, times=times, command=cmd))
    dest.unlink(missing_ok=True)
    rows.append(_schemalog_backup_cli(ctx, size, rows[0]["seconds"]))
    return rows


def _schemalog_backup_cli(ctx: Context, size: int, cp_seconds: float) -> dict:
    """`schemalog --database DB backup create`, whole process, as MiB/s and a ratio to cp."""
    name = "backup: schemalog backup create (whole process)"
    if not ctx.schemalog_ok:
        return _skipped(name, "the schemalog CLI is not available")
    if ctx.migrations is None:
        return _skipped(name, "no schemalog migrations folder")
    tool = Schemalog()
    db = ctx.work / "schemalog-backup" / "app.db"
    argv = [*tool.base(ctx.migrations, db), "backup", "create"]
    times = []
    for i in range(ctx.runs):
        reset_database(ctx.source_db, db, SIDECARS)
        note = tool.prepare_db(ctx.migrations, db, db.parent / f"prepare-{i}.log")
        if note:
            return _skipped(name, note)
        sync_tree(db, SIDECARS)
        r = timed_run(argv, db.parent, db.parent / f"backup-{i}.log", env_for_runs())
        if r.returncode != 0:
            return _skipped(name, f"exited {r.returncode}, see {db.parent}/backup-{i}.log")
        times.append(r.wall)
    med = statistics.median(times)
    return _row(
        name,
        size / MIB / med,
        "MiB/s",
        seconds=med,
        times=times,
        ratio_to_cp=med / cp_seconds,
        command=" ".join(argv),
    )


# --------------------------------------------------------------------------------------
# Whole-process commands on a migrated database


def _migrated_copy(ctx: Context, name: str) -> Path | None:
    """A copy of the source database that `schemalog up` has migrated, or None."""
    if ctx.migrations is None:
        return None
    tool = Schemalog()
    db = ctx.work / name / "app.db"
    reset_database(ctx.source_db, db, SIDECARS)
    if tool.prepare_db(ctx.migrations, db, db.parent / "prepare.log"):
        return None
    r = timed_run(tool.command(ctx.migrations, db), db.parent, db.parent / "up.log", env_for_runs())
    sync_tree(db, SIDECARS)
    return db if r.returncode == 0 else None


def _cli_median(ctx: Context, name: str, argv: list[str], cwd: Path) -> dict:
    times = []
    for i in range(ctx.runs):
        r = timed_run(argv, cwd, cwd / f"cli-{i}.log", env_for_runs())
        if r.returncode != 0:
            return _skipped(name, f"`{' '.join(argv[1:])}` exited {r.returncode}, see {cwd}")
        times.append(r.wall)
    return _row(name, statistics.median(times), "s", times=times, command=" ".join(argv))


def cold_start(ctx: Context) -> list[dict]:
    """`schemalog status --json` and `recover` on a healthy migrated database, vs bare Python."""
    py = sys.executable
    scratch = ctx.work / "cold"
    scratch.mkdir(parents=True, exist_ok=True)
    rows = [
        _cli_median(ctx, "cold start: python -c pass", [py, "-c", "pass"], scratch),
        _cli_median(
            ctx,
            "cold start: python, import sqlite3, read user_version",
            [
                py,
                "-c",
                f"import sqlite3; sqlite3.connect({str(ctx.source_db)!r})"
                ".execute('PRAGMA user_version').fetchone()",
            ],
            scratch,
        ),
    ]
    names = ("cold start: schemalog status --json", "recover on a healthy database")
    if not ctx.schemalog_ok:
        return rows + [_skipped(n, "the schemalog CLI is not available") for n in names]
    db = _migrated_copy(ctx, "cold")
    if db is None:
        return rows + [_skipped(n, f"`schemalog up` failed, see {scratch}/up.log") for n in names]
    base = Schemalog().base(ctx.migrations, db)
    rows.append(_cli_median(ctx, names[0], [*base, "status", "--json"], db.parent))
    rows.append(_cli_median(ctx, names[1], [*base, "recover", "--json"], db.parent))
    return rows


# --------------------------------------------------------------------------------------
# Replay of 100k events (in-process, lazy import)


def _synthetic_events(n: int) -> list:
    """`n` sealed events shaped like real runs: run, lock, backup, then step pairs.

    Hook for the lead: uses `journal.events.Draft`/`Kind` and `journal.chain.seal`;
    adjust it when that API changes. Raises ImportError/AttributeError/TypeError while
    the API is not there, which the caller reports as "skipped".
    """
    from schemalog.journal.chain import GENESIS, seal
    from schemalog.journal.events import Draft, Kind

    events: list = []
    prev = GENESIS
    version = 0

    def add(draft) -> None:
        nonlocal prev
        e = seal(draft, seq=len(events) + 1, prev=prev, ts="2024-06-01T00:00:00.000000Z")
        events.append(e)
        prev = e.hash

    run = 0
    while len(events) < n:
        run += 1
        rid = f"run-{run:06d}"
        add(Draft(rid, Kind.RUN_STARTED, None, {"command": "up"}))
        add(Draft(rid, Kind.LOCK_ACQUIRED, None, {"pid": 4242, "host": "bench", "command": "up"}))
        add(
            Draft(
                rid,
                Kind.BACKUP_TAKEN,
                version,
                {
                    "id": f"b{run}",
                    "path": f"b{run}.sqlite",
                    "version": version,
                    "size": 1,
                    "sha256": "0" * 64,
                    "verified": True,
                },
            )
        )
        for _ in range(48):
            version += 1
            name = f"migration_{version}"
            add(
                Draft(
                    rid,
                    Kind.STEP_STARTED,
                    version,
                    {"direction": "up", "name": name, "checksum": "c" * 64},
                )
            )
            add(
                Draft(
                    rid,
                    Kind.STEP_APPLIED,
                    version,
                    {
                        "direction": "up",
                        "name": name,
                        "checksum": "c" * 64,
                        "statements": 2,
                        "duration_ms": 1,
                        "fingerprint_before": "f" * 16,
                        "fingerprint_after": "f" * 16,
                    },
                )
            )
        add(Draft(rid, Kind.LOCK_RELEASED, None, {}))
        add(Draft(rid, Kind.RUN_FINISHED, None, {"outcome": "succeeded"}))
    return events[:n]


def replay_events(ctx: Context, n: int = 100_000) -> list[dict]:
    """Time replay, JSONL decoding and chain checking of `n` events (in-process)."""
    k = f"{n // 1000}k"
    try:
        from schemalog.journal import codec
        from schemalog.journal.chain import find_break
        from schemalog.journal.replay import replay

        t0 = time.perf_counter()
        events = _synthetic_events(n)
        lines = [codec.encode(e) for e in events]
        build_s = time.perf_counter() - t0
    except (ImportError, AttributeError, TypeError) as exc:
        return [
            _skipped(f"replay {k} events", f"package API not there: {type(exc).__name__}: {exc}")
        ]
    ctx.log(f"extras: built {n} events in {build_s:.1f}s")

    def timed(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    rows = []
    for name, fn in (
        (f"replay {k} events: replay() (in-process)", lambda: replay(events)),
        (f"replay {k} events: decode JSONL lines", lambda: [codec.decode(x) for x in lines]),
        (f"replay {k} events: find_break() chain check", lambda: find_break(events)),
    ):
        try:
            med, times = _median_of(lambda fn=fn: timed(fn), ctx.runs)
        except Exception as exc:
            rows.append(_skipped(name, f"{type(exc).__name__}: {exc}"))
            continue
        rows.append(_row(name, med, "s", times=times, events_per_s=n / med))
    return rows


# --------------------------------------------------------------------------------------
# Peak memory


def _time_v(argv: list[str], cwd: Path) -> tuple[int, float | None]:
    """(exit code, peak RSS in MiB) by /usr/bin/time -v, or by wait4() without it."""
    tv = Path("/usr/bin/time")
    if tv.exists():
        with tempfile.NamedTemporaryFile("r", suffix=".time", dir=cwd, delete=False) as f:
            report = Path(f.name)
        r = subprocess.run(
            [str(tv), "-v", "-o", str(report), *argv],
            cwd=cwd,
            env=env_for_runs(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = None
        for line in report.read_text().splitlines():
            if "Maximum resident set size" in line:
                peak = int(line.rsplit(":", 1)[1]) / 1024
        report.unlink()
        return r.returncode, peak
    r = timed_run(argv, cwd, cwd / "peak.log", env_for_runs())
    return r.returncode, r.maxrss_mib


def peak_memory(ctx: Context) -> list[dict]:
    """Peak RSS of the floor and of `schemalog up` migrating the largest database."""
    rows = []
    how = "/usr/bin/time -v" if Path("/usr/bin/time").exists() else "wait4() rusage"
    size = f"{ctx.source_db.stat().st_size / 1e9:.2f} GB"
    if ctx.floor_migrations is not None:
        db = ctx.work / "peak-floor" / "app.db"
        reset_database(ctx.source_db, db, ())
        argv = [
            sys.executable,
            str(Path(__file__).parent / "floor.py"),
            str(db),
            str(ctx.floor_migrations),
        ]
        rc, peak = _time_v(argv, db.parent)
        rows.append(_row(f"peak RSS: floor, {size} database", peak, "MiB", via=how, rc=rc))
    name = f"peak RSS: schemalog up, {size} database"
    if not ctx.schemalog_ok or ctx.migrations is None:
        rows.append(_skipped(name, "the schemalog CLI is not available"))
        return rows
    tool = Schemalog()
    db = ctx.work / "peak-schemalog" / "app.db"
    reset_database(ctx.source_db, db, SIDECARS)
    note = tool.prepare_db(ctx.migrations, db, db.parent / "prepare.log")
    if note:
        rows.append(_skipped(name, note))
        return rows
    sync_tree(db, SIDECARS)
    argv = tool.command(ctx.migrations, db)
    rc, peak = _time_v(argv, db.parent)
    if rc != 0:
        rows.append(_skipped(name, f"`schemalog up` exited {rc}"))
    else:
        rows.append(_row(name, peak, "MiB", via=how, command=" ".join(argv)))
    return rows


ALL = (backup_throughput, cold_start, replay_events, peak_memory)


def run_all(ctx: Context) -> list[dict]:
    """Every extra measurement, in order; each failure becomes a skipped row."""
    rows: list[dict] = []
    for fn in ALL:
        ctx.log(f"extras: {fn.__name__}")
        try:
            rows.extend(fn(ctx))
        except Exception as exc:  # a broken extra must not lose the main results
            rows.append(_skipped(fn.__name__, f"{type(exc).__name__}: {exc}"))
    for p in (ctx.work,):
        shutil.rmtree(p, ignore_errors=True)
    os.makedirs(ctx.work, exist_ok=True)
    return rows

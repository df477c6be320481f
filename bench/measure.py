"""Timing, resetting and checking one run: the harness's edges. Standard library only."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tools import is_tool_table


def progress(msg: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunResult:
    """One whole-process run: wall time from spawn to reap, exit code, peak RSS, CPU."""

    wall: float
    returncode: int
    maxrss_mib: float
    user: float
    system: float

    def as_dict(self) -> dict:
        return asdict(self)


def timed_run(
    argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None, timeout: float = 1800
) -> RunResult:
    """Run `argv` to completion; wall time covers process start to exit (both included).

    Output goes to `log`. CPU time comes from `wait4()` on this very child (its own and
    its reaped children's). `maxrss_mib` from `wait4()` is at least this process's own
    peak (see `rss_prefix`), so the harness measures peak RSS with GNU time instead.
    """
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            out.write(f"could not start {argv[0]}: {exc}\n".encode())
            return RunResult(0.0, 127, 0.0, 0.0, 0.0)
        # A timer kills a hung tool; the wait itself blocks, so nothing is added to the
        # measured time by polling.
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        t1 = time.perf_counter()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return RunResult(
        wall=t1 - t0,
        returncode=proc.returncode,
        maxrss_mib=usage.ru_maxrss / 1024,
        user=usage.ru_utime,
        system=usage.ru_stime,
    )


SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync")


def strace_prefix(report: Path) -> list[str] | None:
    """argv prefix that counts the sync system calls of a command into `report`, if possible."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    return [strace, "-f", "-c", "-o", str(report), "-e", "trace=" + ",".join(SYNC_CALLS)]


def rss_prefix(report: Path) -> list[str] | None:
    """argv prefix that writes a command's peak RSS (KiB) into `report`, if GNU time is here.

    `wait4()` in this process cannot tell: a child's peak RSS starts from this (large)
    Python process's own, which the kernel carries across exec. GNU time forks from a
    small process, so the peak it reports is the command's.
    """
    tv = Path("/usr/bin/time")
    if not tv.exists():
        return None
    return [str(tv), "-f", "%M", "-o", str(report)]


def read_rss(report: Path) -> float | None:
    """Peak RSS in MiB from a `rss_prefix` report, or None."""
    try:
        last = report.read_text().strip().splitlines()[-1]
        return int(last) / 1024
    except (OSError, ValueError, IndexError):
        return None


def read_strace_counts(report: Path) -> dict[str, int]:
    """{syscall: calls} from a `strace -c` summary; empty when there is none."""
    counts: dict[str, int] = {}
    try:
        lines = report.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        fields = line.split()
        if len(fields) >= 5 and fields[-1] in SYNC_CALLS and fields[3].isdigit():
            counts[fields[-1]] = int(fields[3])
    return counts


def fsync_path(path: Path) -> None:
    """fsync a file or a folder."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reset_database(src: Path, db: Path, sidecars: tuple[str, ...]) -> None:
    """Replace `db` by a durable copy of `src`, removing every file a tool left next to it.

    The copy is fsynced, and the file system synced, so that the timed run does not pay
    for writing back its pages or for committing the deletions.
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    names = ["", "-journal", "-wal", "-shm", ".bak", *sidecars]
    for suffix in names:
        p = Path(str(db) + suffix)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    shutil.copyfile(src, db)
    fsync_path(db)
    fsync_path(db.parent)
    # Flush what the deletions above left to the file system's journal too, so that the
    # timed run's first commit does not wait for it.
    os.sync()


def sync_tree(db: Path, sidecars: tuple[str, ...]) -> None:
    """fsync `db`, the files a tool keeps next to it, and their folder (after a prepare step)."""
    for suffix in ("", *sidecars):
        p = Path(str(db) + suffix)
        if p.is_file():
            fsync_path(p)
    fsync_path(db.parent)


def fingerprint(db: Path) -> dict:
    """What the application schema looks like: objects, their SQL, rows per table (reads only).

    Tool bookkeeping tables (and their indexes) are left out, so two tools that applied
    the same migrations give the same fingerprint. Timestamps differ between runs, so
    rows are counted, not hashed.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        objects = [
            (t, n, " ".join((sql or "").split()))
            for t, n, tbl, sql in rows
            if not is_tool_table(tbl) and not n.startswith("sqlite_")
        ]
        counts = {
            n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]
            for t, n, _ in objects
            if t == "table"
        }
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    digest = hashlib.sha256(repr(objects).encode()).hexdigest()[:16]
    return {
        "schema": digest,
        "objects": len(objects),
        "rows": counts,
        "user_version": user_version,
        "sql": {f"{t} {n}": s for t, n, s in objects},
    }


def compare(reference: dict, other: dict) -> str | None:
    """None when `other` has the same schema and row counts as `reference`, else why not."""
    problems = []
    if reference["schema"] != other["schema"]:
        a, b = reference["sql"], other["sql"]
        missing = sorted(set(a) - set(b))[:3]
        extra = sorted(set(b) - set(a))[:3]
        changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])[:3]
        problems.append(f"schema differs (missing {missing}, extra {extra}, changed {changed})")
    diff = {
        k: (v, other["rows"].get(k))
        for k, v in reference["rows"].items()
        if other["rows"].get(k) != v
    }
    if diff:
        problems.append(f"row counts differ: {dict(list(diff.items())[:3])}")
    return "; ".join(problems) or None


def summarize(times: list[float]) -> dict:
    """Median, min, max and spread of a list of wall times."""
    if not times:
        return {}
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "iqr": q[2] - q[0],
        "n": len(times),
    }

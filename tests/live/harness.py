"""The live harness: a workspace with a database, schemalog run as real subprocesses, an
application writer process beside it, and the checks every scenario ends with.

Everything is observed from outside, the way an operator would: exit codes, stdout and
stderr of `python -m schemalog ...`, and the files themselves read with plain sqlite3 and
json. Nothing here imports schemalog.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs

from tests.live import migration_sets
from tests.live.app_writer import TABLE as APP_TABLE
from tests.live.app_writer import percentile

__all__ = [
    "APP_TABLE",
    "RATE",
    "AppWriter",
    "Completed",
    "EndState",
    "Workspace",
    "calibrate_rows_per_second",
    "cpu_seconds",
    "end_state",
    "judge",
    "one_line",
    "percentile",
    "unprivileged_prefix",
    "wait_until_computing",
]

REPO = Path(__file__).resolve().parents[2]
WRITER_SCRIPT = Path(__file__).with_name("app_writer.py")
JOURNAL_TABLE = "schemalog_journal"
RUN_TIMEOUT_S = 90.0
MODES = {"rollback": "delete", "wal": "wal"}
# The application's commit rate in the scenarios; SCHEMALOG_LIVE_RATE overrides it (a
# diagnostic: a slower writer lets a run get past its backup and shows what happens later).
RATE = float(os.environ.get("SCHEMALOG_LIVE_RATE") or 100)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours without any SCHEMALOG_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


@attrs.frozen
class Completed:
    """One finished schemalog command: its arguments, exit code, output and timing."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    started: float  # time.time() when launched
    elapsed: float  # seconds

    @property
    def finished(self) -> float:
        return self.started + self.elapsed

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr

    def json(self) -> Any:
        """stdout parsed as one JSON document."""
        return json.loads(self.stdout)

    def brief(self) -> dict[str, Any]:
        """What the report shows of it."""
        return {
            "args": " ".join(self.args),
            "code": self.code,
            "elapsed_s": round(self.elapsed, 3),
            "stderr": self.stderr.strip()[-1500:],
            "stdout_tail": self.stdout.strip()[-600:],
        }


class Workspace:
    """A directory holding `app.db`, its migrations, and the commands run on it."""

    def __init__(self, root: Path, mode: str) -> None:
        self.root = root
        self.mode = mode  # "rollback" or "wal"
        self.db = root / "app.db"
        self.migrations = root / "migrations"
        self.migrations.mkdir(parents=True, exist_ok=True)
        self.commands: list[Completed] = []
        self.spawned: list[Spawned] = []
        self.prefix: tuple[str, ...] = ()  # e.g. setpriv, to run the children without privilege

    # -- paths ---------------------------------------------------------------------

    @property
    def jsonl(self) -> Path:
        return self.db.with_name(self.db.name + ".journal.jsonl")

    @property
    def lock(self) -> Path:
        return self.db.with_name(self.db.name + ".lock")

    @property
    def backups(self) -> Path:
        return self.db.with_name(self.db.name + ".backups")

    # -- setting up ----------------------------------------------------------------

    def write_migrations(self, files: Mapping[str, str], *, replace: bool = False) -> None:
        """Write each `name -> text` (dedented) into the migrations directory."""
        if replace:
            for old in self.migrations.iterdir():
                old.unlink()
        for name, text in files.items():
            path = self.migrations / name
            path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")

    def create_database(self) -> None:
        """Create an empty `app.db` in this workspace's journal mode (as the application would)."""
        with closing(sqlite3.connect(self.db, isolation_level=None)) as conn:
            got = conn.execute(f"PRAGMA journal_mode = {MODES[self.mode]}").fetchone()[0]
            assert got.lower() == MODES[self.mode], got
            conn.execute("PRAGMA user_version = 0")

    def prepare(
        self, files: Mapping[str, str], *, ballast_rows: int = 2000, at: int = 1
    ) -> Completed:
        """Create the database, write 001 (the app's table) plus `files`, and `up --to at`."""
        self.create_database()
        self.write_migrations({**migration_sets.base(ballast_rows), **files})
        done = self.run("up", "--to", str(at))
        assert done.code == 0, done.brief()
        return done

    # -- running schemalog ----------------------------------------------------------

    def argv(self, *args: str, lock_timeout: float | None = None) -> list[str]:
        """The command line of `python -m schemalog --database ... ARGS`."""
        argv = [
            *self.prefix,
            sys.executable,
            "-m",
            "schemalog",
            "--database",
            str(self.db),
            "--migrations",
            str(self.migrations),
        ]
        if lock_timeout is not None:
            argv += ["--lock-timeout", str(lock_timeout)]
        return [*argv, *args]

    def run(
        self, *args: str, lock_timeout: float | None = 30.0, timeout: float = RUN_TIMEOUT_S
    ) -> Completed:
        """Run one schemalog command to its end (killed after `timeout` s); record it."""
        argv = self.argv(*args, lock_timeout=lock_timeout)
        started, t0 = time.time(), time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                cwd=self.root,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code = -9
            out = _text(exc.stdout)
            err = _text(exc.stderr) + f"\n[harness: killed after {timeout} s]"
        done = Completed(
            tuple(argv[len(self.prefix) + 3 :]), code, out, err, started, time.perf_counter() - t0
        )
        self.commands.append(done)
        return done

    def spawn(self, *args: str, lock_timeout: float | None = 30.0) -> Spawned:
        """Start one schemalog command without waiting for it."""
        argv = self.argv(*args, lock_timeout=lock_timeout)
        spawned = Spawned(self, tuple(argv[len(self.prefix) + 3 :]), argv)
        self.spawned.append(spawned)
        return spawned

    def kill_all(self) -> None:
        """Finalizer: kill every command started with `spawn` that is still running."""
        for spawned in self.spawned:
            spawned.kill()

    # -- reading the files directly ---------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A plain connection to the database, as an application would open it."""
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        return conn

    def user_version(self) -> int:
        with closing(self.connect()) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def app_ids(self) -> set[int]:
        """Every id in the application's table now."""
        with closing(self.connect()) as conn:
            return {r[0] for r in conn.execute(f"SELECT id FROM {APP_TABLE}")}

    def table_events(self) -> list[dict[str, Any]]:
        """The journal table's rows, in seq order (empty when it does not exist)."""
        with closing(self.connect()) as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (JOURNAL_TABLE,)
            ).fetchone()
            if not exists:
                return []
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT * FROM {JOURNAL_TABLE} ORDER BY seq").fetchall()
            return [dict(r) | {"data": json.loads(r["data"])} for r in rows]

    def jsonl_events(self) -> list[dict[str, Any]]:
        """The JSONL journal's events (a torn last line is left out)."""
        if not self.jsonl.exists():
            return []
        events = []
        for line in self.jsonl.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def events(self) -> list[dict[str, Any]]:
        """The longer journal's events."""
        table, jsonl = self.table_events(), self.jsonl_events()
        return table if len(table) >= len(jsonl) else jsonl

    def backup_files(self) -> set[str]:
        """Names of the finished backup files in the default backup directory."""
        if not self.backups.is_dir():
            return set()
        return {p.name for p in self.backups.iterdir() if p.name.startswith("v") and p.is_file()}

    def snapshot_files(self) -> dict[str, bytes | None]:
        """Bytes of the database, its -wal/-journal, the JSONL and each backup (for byte-compares)."""
        paths = [self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-journal"), self.jsonl]
        if self.backups.is_dir():
            paths += sorted(self.backups.rglob("*"))
        return {
            str(p): (p.read_bytes() if p.is_file() else None)
            for p in paths
            if p.exists() or p.parent == self.root
        }


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class Spawned:
    """A schemalog command running in the background; a thread reaps it the moment it exits,
    so its `elapsed` is its own, whatever order the tests wait in."""

    def __init__(self, ws: Workspace, args: tuple[str, ...], argv: list[str]) -> None:
        self.ws = ws
        self.args = args
        self.started = time.time()
        self._t0 = time.perf_counter()
        self._ended: float | None = None
        self._output: tuple[str, str] = ("", "")
        self.proc = subprocess.Popen(
            argv,
            cwd=ws.root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        self._output = self.proc.communicate()
        self._ended = time.perf_counter()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int) -> float:
        """Send `signum`; return the time.perf_counter() it was sent at."""
        self.proc.send_signal(signum)
        return time.perf_counter()

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> Completed:
        """Wait for it (killed after `timeout` s); record and return the result."""
        self._reaper.join(timeout)
        killed = self._reaper.is_alive()
        if killed:
            self.proc.kill()
            self._reaper.join()
        out, err = self._output
        code = -9 if killed else self.proc.returncode
        if killed:
            err += f"\n[harness: killed after {timeout} s]"
        assert self._ended is not None
        done = Completed(self.args, code, out, err, self.started, self._ended - self._t0)
        self.ws.commands.append(done)
        return done

    @property
    def ended_at(self) -> float | None:
        """time.perf_counter() when it exited (None while it runs)."""
        return self._ended

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self._reaper.join(10)


# --- the application writer -----------------------------------------------------------------


class AppWriter:
    """The application writer process (tests/live/app_writer.py) on a workspace's database."""

    def __init__(
        self, ws: Workspace, *, rate: float = 100.0, hold_seconds: float = 8.0, name: str = "app"
    ) -> None:
        self.ws = ws
        self.rate = rate
        self.log = ws.root / f"{name}.commits.log"
        self.summary_path = ws.root / f"{name}.summary.json"
        self.argv = [
            sys.executable,
            str(WRITER_SCRIPT),
            "--database",
            str(ws.db),
            "--log",
            str(self.log),
            "--summary",
            str(self.summary_path),
            "--rate",
            str(rate),
            "--journal-mode",
            MODES[ws.mode],
            "--hold-seconds",
            str(hold_seconds),
            "--busy-timeout-ms",
            "3000",
            "--max-seconds",
            "300",
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.summary: dict[str, Any] | None = None

    def start(self, *, warm_rows: int = 20, timeout: float = 15.0) -> AppWriter:
        """Start the process and wait until it has committed `warm_rows` rows."""
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.ws.root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while len(self.committed()) < warm_rows:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"app writer exited {self.proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"app writer committed nothing in {timeout} s")
            time.sleep(0.02)
        return self

    def hold(self, timeout: float = 10.0) -> None:
        """Make the writer hold its next transaction open; return once it holds the lock."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        marker = Path(f"{self.log}.holding")
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if time.monotonic() > deadline:
                raise AssertionError("app writer never took its long write transaction")
            time.sleep(0.01)

    def wait_held(self, timeout: float = 30.0) -> None:
        """Wait until the long transaction committed."""
        marker = Path(f"{self.log}.held")
        deadline = time.monotonic() + timeout
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM, wait, read the summary (kill when it does not stop)."""
        if self.summary is not None:
            return self.summary
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            err += "\n[harness: writer killed]"
        if self.summary_path.exists():
            self.summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        else:
            self.summary = {"error": f"no summary; exit {self.proc.returncode}: {err[-800:]}"}
        self.summary["stderr"] = err.strip()[-800:]
        return self.summary

    def kill(self) -> None:
        """Finalizer: make sure the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def commits(self) -> list[tuple[int, float, float]]:
        """(id, wall time of COMMIT's return, latency s) for every commit it logged."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((int(parts[0]), float(parts[1]), float(parts[2])))
        return out

    def committed(self) -> list[int]:
        return [c[0] for c in self.commits()]

    def latency_during(self, start: float, end: float) -> dict[str, Any]:
        """Latency figures of the commits that were waiting at some point in [start, end]."""
        lat = [lat for _, t, lat in self.commits() if t >= start and t - lat <= end]
        return {
            "commits": len(lat),
            "p50_s": percentile(lat, 0.5),
            "p99_s": percentile(lat, 0.99),
            "max_s": max(lat) if lat else None,
        }


# --- end-of-scenario checks --------------------------------------------------------------


_PATH = re.compile(r"(/[^\s;,'\"()\[\]]+)")


def sqlite_files_under(path: Path) -> list[Path]:
    """SQLite database files at or under `path` (by their header)."""
    candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
    found = []
    for p in candidates:
        if not p.is_file() or p.name.endswith(("-wal", "-shm", "-journal")):
            continue
        with open(p, "rb") as f:
            if f.read(16) == b"SQLite format 3\x00":
                found.append(p)
    return found


def ids_in_copy(db: Path) -> set[int]:
    """The application's ids in a database file kept aside (read from a scratch copy, with
    its -wal, so the kept file is never touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "kept.db"
        shutil.copyfile(db, copy)
        for suffix in ("-wal", "-journal"):
            side = Path(f"{db}{suffix}")
            if side.exists():
                shutil.copyfile(side, Path(f"{copy}{suffix}"))
        try:
            with closing(sqlite3.connect(copy)) as conn:
                return {r[0] for r in conn.execute(f"SELECT id FROM {APP_TABLE}")}
        except sqlite3.Error:
            return set()


def account_for_loss(missing: Sequence[int], outputs: Iterable[str]) -> str | None:
    """None when the commands' output accounts for the `missing` rows: it names the table,
    how many rows (the exact number) and a place that exists and holds every one of them;
    otherwise why not."""
    if not missing:
        return None
    text = "\n".join(outputs)
    count = len(missing)
    named = re.search(rf"(?<![\d.]){count}(?![\d.])", text) and APP_TABLE in text
    kept = None
    for raw in _PATH.findall(text):
        path = Path(raw.rstrip(".:"))
        for db in sqlite_files_under(path) if path.exists() else []:
            if set(missing) <= ids_in_copy(db):
                kept = db
                break
        if kept:
            break
    if named and kept:
        return None
    if not named and not kept:
        return f"{count} committed row(s) gone and not mentioned"
    if not named:
        return f"{count} committed row(s) gone; they are kept in {kept} but the output does not say how many or from which table"
    return f"{count} committed row(s) gone; the output names them but no path it names holds them"


@attrs.define
class EndState:
    """What a scenario found at its end; `problems` lists every broken expectation."""

    missing: list[int] = attrs.Factory(list)
    loss: str | None = None
    committed: int = 0
    table_events: int = 0
    jsonl_events: int = 0
    status: dict[str, Any] | None = None
    writer: dict[str, Any] | None = None
    problems: list[str] = attrs.Factory(list)

    def report(self) -> dict[str, Any]:
        status = self.status or {}
        return {
            "committed_rows": self.committed,
            "rows_lost": len(self.missing),
            "loss_accounted": self.loss is None,
            "loss": self.loss,
            "table_events": self.table_events,
            "jsonl_events": self.jsonl_events,
            "status": {
                k: status.get(k)
                for k in ("version", "user_version", "needs_recovery", "journal", "lock")
            },
            "writer": {
                k: (self.writer or {}).get(k)
                for k in (
                    "rows_committed",
                    "achieved_rate",
                    "busy_errors",
                    "other_errors",
                    "latency_p50_s",
                    "latency_p99_s",
                    "latency_max_s",
                    "error",
                )
            },
            "problems": self.problems,
        }


def end_state(
    ws: Workspace,
    writer: AppWriter | None,
    *,
    outputs: Iterable[str] = (),
    expect_version: int | None = None,
) -> EndState:
    """Stop the writer, then check: every committed row present (or its loss accounted for by
    `outputs`), both journals equal, `status --json` consistent, the expected version."""
    state = EndState()
    if writer is not None:
        state.writer = writer.stop()
        committed = writer.committed()
        state.committed = len(committed)
        try:
            present = ws.app_ids()
        except sqlite3.Error as exc:
            present = set()
            state.problems.append(f"cannot read {APP_TABLE}: {exc}")
        state.missing = sorted(set(committed) - present)
        state.loss = account_for_loss(state.missing, outputs)
        if state.loss:
            state.problems.append(state.loss)
        other = (state.writer or {}).get("other_errors") or {}
        if other:
            state.problems.append(f"the application saw errors other than busy: {other}")
    table, jsonl = ws.table_events(), ws.jsonl_events()
    state.table_events, state.jsonl_events = len(table), len(jsonl)
    if [e["hash"] for e in table] != [e["hash"] for e in jsonl]:
        state.problems.append(
            f"journals differ: table {len(table)} events, JSONL {len(jsonl)} "
            f"(JSONL-only kinds: {[e['kind'] for e in jsonl[len(table) :]]}, "
            f"table-only kinds: {[e['kind'] for e in table[len(jsonl) :]]})"
        )
    done = ws.run("status", "--json", timeout=60)
    try:
        status = done.json()
    except json.JSONDecodeError:
        state.problems.append(f"status --json exit {done.code}: {done.stderr.strip()}")
        return state
    state.status = status
    if status.get("version") != status.get("user_version"):
        state.problems.append(
            f"status: version {status.get('version')} != user_version {status.get('user_version')}"
        )
    if not (status.get("journal") or {}).get("consistent"):
        state.problems.append(f"status: journal not consistent: {status.get('journal')}")
    if (status.get("lock") or {}).get("held"):
        state.problems.append(f"status: the lock is still held: {status.get('lock')}")
    real = ws.user_version()
    if expect_version is not None and real != expect_version:
        state.problems.append(f"user_version {real}, expected {expect_version}")
    return state


# --- calibration ------------------------------------------------------------------------------


def calibrate_rows_per_second(probe_rows: int = 1_000_000) -> float:
    """How many rows per second the slow step's recursive CTE counts on this machine now."""
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
        "SELECT count(*) FROM c"
    )
    with closing(sqlite3.connect(":memory:")) as conn:
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            conn.execute(sql, (probe_rows,)).fetchone()
            best = min(best, time.perf_counter() - t0)
    return probe_rows / best


def judge(
    record: dict[str, Any], state: EndState | None, expectations: Iterable[tuple[bool, str]]
) -> None:
    """Record the end state and every unmet expectation (`(held, what was expected)`), then
    fail with all of them at once, so one run of a scenario shows everything it breaks."""
    problems = [what for held, what in expectations if not held]
    if state is not None:
        problems += state.problems
        record["end"] = state.report()
    record["problems"] = problems
    assert not problems, "\n".join(problems)


def one_line(text: str) -> bool:
    """Whether `text` (stderr) is exactly one non-empty line."""
    return len([line for line in text.strip().splitlines() if line.strip()]) == 1


def unprivileged_prefix() -> tuple[str, ...] | None:
    """A command prefix under which file permissions bind (root bypasses them): `setpriv`
    dropping the capabilities that override them. () when not root; None when impossible."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable", "--")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (None when it ended or not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_computing(pid: int, *, timeout: float = 30.0, window: float = 0.5) -> float | None:
    """Wait until process `pid` has burnt at least half of the last `window` seconds in CPU
    (a long SQL statement is running, not a lock wait or a sleep); return how long that took,
    None if it did not happen within `timeout` (or the process ended)."""
    t0 = time.perf_counter()
    samples: list[tuple[float, float]] = []
    while time.perf_counter() - t0 < timeout:
        cpu = cpu_seconds(pid)
        if cpu is None:
            return None
        now = time.perf_counter()
        samples.append((now, cpu))
        old = [s for s in samples if now - s[0] >= window]
        if old and cpu - old[-1][1] >= window / 2:
            return now - t0
        time.sleep(0.05)
    return None

"""Portability: the lock without `fcntl` (Windows' `msvcrt.locking`), the copy without
`copy_file_range` or `sendfile` (macOS, Windows), positional I/O without `pread`, and the
Windows branches of paths, flushes, descriptors and renames — simulated on Linux.

Commands run in real subprocesses through `simulated_platform.py`, which takes the calls
away before schemalog is imported and traces which path did the work.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

import schemalog.engine.shell.backup as backup_module
import schemalog.engine.shell.copy as copy_module
import schemalog.engine.shell.lock as lock_module
import schemalog.journal.durable as durable
from schemalog.engine.base.connection import uri_path
from schemalog.engine.base.errors import LockHeld, LockTimeout
from schemalog.engine.shell.backup import take_backup_deferred
from schemalog.engine.shell.lock import Holder, MigrationLock, break_lock, probe
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    file_digest,
    of_kind,
    user_version,
    write_migrations,
)
from tests.engine.shell.simulated_platform import LK_NBLCK, LK_UNLCK, FakeMsvcrt

SIMULATOR = Path(__file__).with_name("simulated_platform.py")
WINDOWS_LIKE = "fcntl,copy_file_range,sendfile,pread,O_CLOEXEC,pipe_wakeup"
TIMEOUT_S = 120


def holder(run_id: str = "run-1") -> Holder:
    """A holder with fixed, recognisable fields."""
    return Holder(4242, "box", run_id, "up", "2026-01-02T03:04:05.000000Z")


class Simulated:
    """schemalog commands in subprocesses on a simulated platform, in one directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "app.db"
        self.trace_file = workdir / "trace.jsonl"
        self.migrations = write_migrations(workdir / "migrations", BASIC)

    def command(self, without: str, *args: str) -> list[str]:
        return [
            sys.executable,
            str(SIMULATOR),
            "--without",
            without,
            "--",
            "--database",
            str(self.db),
            "--migrations",
            str(self.migrations),
            "--lock-timeout",
            "60",
            *args,
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        return {**env, "SIM_TRACE": str(self.trace_file), "NO_COLOR": "1"}

    def run(self, without: str, *args: str, expect: int = 0) -> str:
        """Run one command; assert its exit code; return its stdout."""
        done = subprocess.run(
            self.command(without, *args),
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode == expect, done.stdout + done.stderr
        return done.stdout

    def start(self, without: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(without, *args),
            cwd=self.workdir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def trace(self) -> list[dict]:
        if not self.trace_file.exists():
            return []
        return [json.loads(line) for line in self.trace_file.read_text().splitlines()]


@pytest.fixture
def sim(tmp_path: Path) -> Simulated:
    """A work directory with the three BASIC migrations and no database yet."""
    return Simulated(tmp_path)


class TestSimulatedPlatforms:
    @pytest.mark.parametrize(
        ("without", "copy", "methods"),
        [
            ("fcntl", "kernel", ["_by_copy_file_range", "_by_sendfile"]),
            ("copy_file_range", "kernel", ["_by_sendfile"]),
            ("copy_file_range,sendfile", "buffered", None),
            (WINDOWS_LIKE, "buffered", None),
        ],
        ids=["no-fcntl", "no-copy_file_range", "no-kernel-copy", "windows-like"],
    )
    def test_up_backup_create_and_restore(self, sim: Simulated, without, copy, methods):
        """up, backup create, backup list and backup restore work with the calls taken away,
        through the lock and copy paths that remain (the trace says which did the work)."""
        sim.run(without, "up")
        assert user_version(sim.db) == 3
        sim.run(without, "backup", "create")
        listed = json.loads(sim.run(without, "backup", "list", "--json"))
        assert [b["version"] for b in listed] == [0, 3]
        for backup in listed:
            assert (
                file_digest(sim.db.with_name("app.db.backups") / backup["path"])
                == (backup["sha256"])
            )
        sim.run(without, "backup", "restore", listed[0]["id"])
        assert user_version(sim.db) == 0
        sim.run(without, "up")
        assert user_version(sim.db) == 3
        assert_journals_identical(sim.db)

        trace = sim.trace()
        copies = [t for t in trace if t["kind"] == "copy"]
        assert copies, "no raw copy was traced"
        assert {t["how"] for t in copies} == {copy}
        if methods is not None:
            assert all(t["methods"] == methods for t in copies)
        locks = [t for t in trace if t["kind"] == "locking"]
        if "fcntl" in without:
            # up, backup create, restore, up: each took the Windows-style lock (and `backup
            # list`, read-only, probes it the same way for an instant)
            taken = [t for t in locks if t["mode"] == LK_NBLCK and t["outcome"] == "ok"]
            assert len({t["pid"] for t in taken}) in (4, 5)
            assert {t["offset"] for t in locks} == {lock_module._WINDOWS_LOCK_OFFSET}
        else:
            assert locks == []

    def test_lock_status_without_fcntl(self, sim: Simulated):
        """`lock status` (read-only) probes with the Windows-style lock and releases it."""
        sim.run("fcntl", "up")
        status = json.loads(sim.run("fcntl", "lock", "status", "--json"))
        assert status["held"] is False
        probe_pid = [t for t in sim.trace() if t["kind"] == "locking"][-1]["pid"]
        modes = [t["mode"] for t in sim.trace() if t["pid"] == probe_pid]
        assert modes == [LK_NBLCK, LK_UNLCK]

    def test_two_racing_ups_without_fcntl(self, sim: Simulated):
        """Two `up` processes with the Windows-style lock: one applies every migration, the
        other waits on the lock (it is seen busy), then finds nothing to do; both exit 0."""
        (sim.migrations / "004_slow.py").write_text(
            textwrap.dedent(
                '''
                """Slow: holds the lock long enough for the other process to find it taken."""
                import time

                def up(conn):
                    time.sleep(2.0)
                    conn.execute("CREATE TABLE slow (id INTEGER PRIMARY KEY)")

                def down(conn):
                    conn.execute("DROP TABLE slow")
                '''
            ),
            encoding="utf-8",
        )
        first = sim.start(WINDOWS_LIKE, "up")
        deadline = time.monotonic() + 60
        while not any(
            t["kind"] == "locking" and t["outcome"] == "ok" and t["pid"] == first.pid
            for t in sim.trace()
        ):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first up never took the lock"
            time.sleep(0.05)
        second = sim.start(WINDOWS_LIKE, "up")
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs

        waits = [t for t in sim.trace() if t["pid"] == second.pid and t["kind"] == "locking"]
        assert waits[0]["outcome"] == "busy", waits
        assert waits[-1]["outcome"] == "ok"
        events = assert_journals_identical(sim.db)
        assert sorted(e.version for e in of_kind(events, "step_applied")) == [1, 2, 3, 4]
        assert len(of_kind(events, "run_started")) == 1  # the waiter found nothing to do
        assert user_version(sim.db) == 4


@pytest.fixture
def windows_lock(monkeypatch) -> FakeMsvcrt:
    """lock.py's Windows branch: no fcntl, the msvcrt stand-in (on the real flock)."""
    fake = FakeMsvcrt(fcntl)
    monkeypatch.setattr(lock_module, "fcntl", None)
    monkeypatch.setattr(lock_module, "msvcrt", fake, raising=False)
    return fake


class TestWindowsLock:
    def test_two_objects_exclude_each_other(self, tmp_path: Path, windows_lock):
        """Two locks on one file exclude each other; the second names the first's holder."""
        path = tmp_path / "app.db.lock"
        with MigrationLock(path) as first:
            first.acquire(holder("a"), timeout=0)
            with pytest.raises(LockTimeout, match="run a"):
                MigrationLock(path).acquire(holder("b"), timeout=0)
        with MigrationLock(path) as second:
            second.acquire(holder("b"), timeout=0)
            assert second.held

    def test_locked_byte_is_past_the_record(self, tmp_path: Path, windows_lock):
        """The locked byte lies past the holder record, so others can read who holds it
        (Windows locks are mandatory), and the record is written at the start."""
        path = tmp_path / "app.db.lock"
        with MigrationLock(path) as lock:
            lock.acquire(holder(), timeout=0)
            ((_fd, mode, offset, outcome),) = windows_lock.calls
            assert (mode, offset, outcome) == (LK_NBLCK, lock_module._WINDOWS_LOCK_OFFSET, "ok")
            assert offset > lock_module._RECORD_LIMIT
            assert path.read_bytes() == holder().to_line()
        assert path.read_bytes() == b""  # a clean release leaves no holder behind

    def test_probe_sees_holder_and_releases_its_instant_lock(self, tmp_path: Path, windows_lock):
        """probe reports a held lock and its holder; on a free lock it unlocks what it took."""
        path = tmp_path / "app.db.lock"
        with MigrationLock(path) as lock:
            lock.acquire(holder(), timeout=0)
            status = probe(path)
            assert status.held and status.holder == holder()
        assert not probe(path).held
        (_, lock_mode, at, ok), (fd, unlock_mode, at_again, ok_again) = windows_lock.calls[-2:]
        assert (lock_mode, unlock_mode, ok, ok_again) == (LK_NBLCK, LK_UNLCK, "ok", "ok")
        assert at == at_again == lock_module._WINDOWS_LOCK_OFFSET
        assert fd not in windows_lock.locked

    def test_break_lock_refuses_a_live_holder(self, tmp_path: Path, windows_lock):
        """break_lock refuses while the lock is held, and clears a stale record once free."""
        path = tmp_path / "app.db.lock"
        lock = MigrationLock(path)
        lock.acquire(holder(), timeout=0)
        with pytest.raises(LockHeld):
            break_lock(path)
        lock.release()
        path.write_bytes(holder("dead").to_line())
        assert break_lock(path) == holder("dead")

    def test_other_errors_are_raised(self, tmp_path: Path, windows_lock, monkeypatch):
        """An error of `locking` other than "held by another" is not taken for contention."""

        monkeypatch.setattr(windows_lock, "locking", raising(errno.EBADF))
        with pytest.raises(OSError, match="Bad file descriptor"):
            MigrationLock(tmp_path / "app.db.lock").acquire(holder(), timeout=0)

    def test_the_lock_module_imports_fcntl_only_where_it_exists(self):
        """lock.py imports fcntl inside a try with msvcrt as the fallback (not unconditionally)."""
        source = Path(lock_module.__file__).read_text(encoding="utf-8")
        assert "\nimport fcntl" not in source
        assert "try:\n    import fcntl\nexcept ImportError:" in source


def raising(code: int):
    """A stand-in for an os call that fails with `code`."""

    def fail(*_a):
        raise OSError(code, os.strerror(code))

    return fail


def source_file(tmp_path: Path, size: int = 300_001) -> Path:
    """A file of `size` pseudo-random bytes (not a multiple of a page)."""
    path = tmp_path / "source.bin"
    path.write_bytes(hashlib.shake_256(b"schemalog").digest(size))
    return path


def copy_of(source: Path, tmp_path: Path, pages_per_step: int = 7) -> tuple[Path, int, str, list]:
    """raw_copy of `source` into a new file; returns (target, size, sha256, progress calls)."""
    target = tmp_path / "target.bin"
    target.write_bytes(b"")
    calls: list[tuple[int, int]] = []
    with copy_module.raw_copy(
        source, target, lambda d, t: calls.append((d, t)), pages_per_step
    ) as (size, digest):
        sha = digest()
    return target, size, sha, calls


class TestRawCopyFallbacks:
    def spy(self, monkeypatch, name: str) -> list:
        """Count calls of `os.<name>` (still calling it)."""
        real, seen = getattr(os, name), []

        def counted(*args):
            seen.append(args)
            return real(*args)

        monkeypatch.setattr(os, name, counted)
        return seen

    def assert_exact(self, source: Path, target: Path, size: int, sha: str) -> None:
        data = source.read_bytes()
        assert target.read_bytes() == data
        assert (size, sha) == (len(data), hashlib.sha256(data).hexdigest())

    def test_copy_file_range_first(self, tmp_path: Path, monkeypatch):
        """Where copy_file_range exists it does the copy; sendfile is not called."""
        source = source_file(tmp_path)
        ranges, sends = self.spy(monkeypatch, "copy_file_range"), self.spy(monkeypatch, "sendfile")
        target, size, sha, calls = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)
        assert ranges and not sends
        assert calls[-1] == (size // 4096, size // 4096)

    def test_sendfile_without_copy_file_range(self, tmp_path: Path, monkeypatch):
        """Without copy_file_range (older kernels, other systems) sendfile copies."""
        source = source_file(tmp_path)
        monkeypatch.delattr(os, "copy_file_range")
        sends = self.spy(monkeypatch, "sendfile")
        target, size, sha, _ = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)
        assert len(sends) == -(-size // (7 * 4096))

    def test_buffered_without_kernel_copies_hashes_in_the_same_pass(
        self, tmp_path: Path, monkeypatch
    ):
        """Without either, a buffered loop copies and hashes: no second reader thread."""
        source = source_file(tmp_path)
        monkeypatch.delattr(os, "copy_file_range")
        monkeypatch.delattr(os, "sendfile")

        def no_thread(*_a, **_kw):
            raise AssertionError("the buffered copy must hash in its own loop")

        monkeypatch.setattr(copy_module, "ThreadPoolExecutor", no_thread)
        reads = self.spy(monkeypatch, "pread")
        target, size, sha, calls = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)
        assert len(reads) == -(-size // (7 * 4096))  # each byte read once
        assert calls[-1] == (size // 4096, size // 4096)

    def test_sendfile_refusing_a_file_falls_back(self, tmp_path: Path, monkeypatch):
        """macOS: sendfile exists but refuses a file as output (ENOTSOCK): buffered copy."""
        source = source_file(tmp_path)
        monkeypatch.delattr(os, "copy_file_range")
        monkeypatch.setattr(os, "sendfile", raising(errno.ENOTSOCK))
        buffered = []
        real = copy_module._buffered_copy
        monkeypatch.setattr(
            copy_module, "_buffered_copy", lambda *a: buffered.append(1) or real(*a)
        )
        target, size, sha, _ = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)
        assert buffered == [1]

    def test_kernel_refusing_midway_continues_in_user_space(self, tmp_path: Path, monkeypatch):
        """A kernel copy that starts refusing after the first chunk (EXDEV), then sendfile
        too: the rest goes through user space, and the hash still covers every byte."""
        source = source_file(tmp_path)
        real_range, count = os.copy_file_range, []

        def flaky(*args):
            count.append(1)
            if len(count) > 1:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real_range(*args)

        monkeypatch.setattr(os, "copy_file_range", flaky)
        monkeypatch.setattr(os, "sendfile", raising(errno.EINVAL))
        target, size, sha, _ = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)

    def test_disk_full_from_sendfile_is_raised(self, tmp_path: Path, monkeypatch):
        """ENOSPC from a fallback kernel copy is an error, not a reason to fall back."""
        source = source_file(tmp_path)
        monkeypatch.delattr(os, "copy_file_range")
        monkeypatch.setattr(os, "sendfile", raising(errno.ENOSPC))
        with pytest.raises(OSError) as info:
            copy_of(source, tmp_path)
        assert info.value.errno == errno.ENOSPC

    def test_without_pread_and_pwrite(self, tmp_path: Path, monkeypatch):
        """Windows: no pread/pwrite and no kernel copy; seek-and-read gives the same bytes."""
        source = source_file(tmp_path)
        for name in ("copy_file_range", "sendfile", "pread", "pwrite"):
            monkeypatch.delattr(os, name)
        target, size, sha, _ = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)

    def test_empty_file(self, tmp_path: Path):
        """An empty file copies to an empty file with the hash of nothing."""
        source = tmp_path / "empty.bin"
        source.write_bytes(b"")
        target, size, sha, _ = copy_of(source, tmp_path)
        self.assert_exact(source, target, size, sha)

    @pytest.mark.parametrize("kernel", [True, False])
    def test_a_source_that_shrinks_is_an_io_error(self, tmp_path: Path, monkeypatch, kernel):
        """A source that ends before its size said raises EIO, kernel copy or buffered."""
        source = source_file(tmp_path)
        if not kernel:
            monkeypatch.delattr(os, "copy_file_range")
            monkeypatch.delattr(os, "sendfile")
        real_fstat = os.fstat

        def larger(fd):
            st = real_fstat(fd)
            return os.stat_result((*st[:6], st.st_size + 10_000, *st[7:]))

        monkeypatch.setattr(copy_module.os, "fstat", larger)
        with pytest.raises(OSError) as info:
            copy_of(source, tmp_path)
        assert info.value.errno == errno.EIO


class TestWindowsBranches:
    def test_positional_io_without_pread(self, tmp_path: Path, monkeypatch):
        """read_at and write_at work with a seek where pread/pwrite do not exist."""
        monkeypatch.delattr(os, "pread")
        monkeypatch.delattr(os, "pwrite")
        path = tmp_path / "f"
        path.write_bytes(b"0123456789")
        fd = os.open(path, os.O_RDWR)
        try:
            assert durable.write_at(fd, b"ab", 4) == 2
            assert durable.read_at(fd, 3, 3) == b"3ab"
            assert durable.read_at(fd, 5, 10) == b""
        finally:
            os.close(fd)
        assert path.read_bytes() == b"0123ab6789"

    @pytest.mark.parametrize("keep", [True, False])
    def test_read_descriptor(self, tmp_path: Path, monkeypatch, keep):
        """POSIX keeps the one descriptor of a database file open; Windows closes it after
        use, so the application can still rename or delete its database."""
        monkeypatch.setattr(durable, "_KEEP_READ_DESCRIPTORS", keep)
        path = tmp_path / f"kept-{keep}.db"
        path.write_bytes(b"x")
        with durable.read_descriptor(path) as fd:
            assert os.read(fd, 1) == b"x"
        if keep:
            assert durable.KEPT_DESCRIPTORS[(os.stat(path).st_dev, os.stat(path).st_ino)] == fd
            os.fstat(fd)  # still open
        else:
            with pytest.raises(OSError):
                os.fstat(fd)

    def test_fsync_file_opens_for_writing_on_windows(self, tmp_path: Path, monkeypatch):
        """Windows flushes only a writable descriptor: fsync_file opens read-write there."""
        path = tmp_path / "f"
        path.write_bytes(b"x")
        flags: list[int] = []
        real_open = os.open
        monkeypatch.setattr(
            durable.os, "open", lambda p, f, *a: flags.append(f) or real_open(p, f, *a)
        )
        durable.fsync_file(path)
        monkeypatch.setattr(os, "name", "nt")
        try:
            durable.fsync_file(path)
        finally:
            monkeypatch.setattr(os, "name", "posix")
        assert [f & 3 for f in flags] == [os.O_RDONLY, os.O_RDWR]

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            (PureWindowsPath(r"C:\Users\Ann Lee\app.db"), "/C:/Users/Ann%20Lee/app.db"),
            (PureWindowsPath(r"\\server\share\data\app.db"), "////server/share/data/app.db"),
            (PureWindowsPath(r"D:\data\50%?#.db"), "/D:/data/50%25%3F%23.db"),
            (PurePosixPath("/srv/app data/a?b#c.db"), "/srv/app%20data/a%3Fb%23c.db"),
        ],
    )
    def test_uri_paths(self, path, expected):
        """Windows paths become SQLite's documented URI form; POSIX paths stay as they were."""
        assert uri_path(path) == expected

    def test_deferred_backup_is_checked_before_its_rename_on_windows(
        self, tmp_path: Path, monkeypatch
    ):
        """Windows cannot rename a file SQLite holds open: the deferred backup is checked
        first, then published verified, with nothing left to wait for."""
        db = tmp_path / "app.db"
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.commit()
        monkeypatch.setattr(backup_module, "_RENAME_WHILE_OPEN", False)

        def not_on_windows(*_a):
            raise AssertionError("published while the check's connection is open")

        monkeypatch.setattr(backup_module, "_publish_unchecked", not_on_windows)
        record, wait = take_backup_deferred(db, tmp_path / "backups")
        wait()
        assert record.verified
        assert file_digest(tmp_path / "backups" / record.path) == record.sha256


INTERRUPT_SCRIPT = """
import os, signal, sqlite3, sys, threading
from schemalog.engine.shell import signals
signals._WAKEUP_SOCKETS = sys.argv[1] == "sockets"
signals.install()
conn = sqlite3.connect(":memory:")
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
with signals.protected(), signals.watching(conn):
    try:
        conn.execute(endless).fetchone()
    except sqlite3.OperationalError as exc:
        print(exc, signals.pending() == signal.SIGINT)
"""


class TestSignalWakeup:
    @pytest.mark.parametrize("channel", ["pipe", "sockets"])
    def test_a_signal_interrupts_a_running_statement(self, tmp_path: Path, channel: str):
        """SIGINT during a statement that never ends interrupts it, through the pipe (POSIX)
        or the socket pair `set_wakeup_fd` needs on Windows."""
        done = subprocess.run(
            [sys.executable, "-c", INTERRUPT_SCRIPT, channel],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout.strip() == "interrupted True", done.stderr

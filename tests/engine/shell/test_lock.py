"""Tests for schemalog.engine.shell.lock: exclusion across objects and processes, waiting, probing, breaking."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import schemalog.engine.shell.lock as lock_module
from schemalog.engine.base.errors import ConfigError, LockHeld, LockTimeout
from schemalog.engine.shell.lock import Holder, LockStatus, MigrationLock, break_lock, probe

REPO = Path(__file__).resolve().parents[3]

HOLD_SCRIPT = """
import sys, time
from pathlib import Path
from schemalog.engine.shell.lock import Holder, MigrationLock
lock = MigrationLock(Path(sys.argv[1]))
lock.acquire(Holder.for_this_process("run-child", "up --to 3"), timeout=5)
print("locked", flush=True)
time.sleep(60)
"""


def holder(run_id: str = "run-1", command: str = "up") -> Holder:
    """A holder with fixed, recognisable fields."""
    return Holder(
        pid=4242,
        host="box",
        run_id=run_id,
        command=command,
        acquired_at="2026-01-02T03:04:05.000000Z",
    )


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    """Where the lock file of `app.db` lives."""
    return tmp_path / "app.db.lock"


@pytest.fixture
def child(lock_path: Path):
    """A real subprocess holding the lock; yields its Popen, kills it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(lock_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


class TestHolder:
    def test_round_trip(self):
        """A holder written as a line reads back equal."""
        h = holder()
        assert Holder.from_line(h.to_line()) == h

    def test_line_is_one_json_object(self):
        """The record is exactly one JSON line."""
        line = holder().to_line()
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert json.loads(line)["run_id"] == "run-1"

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x00\xff garbage",
            b"[1, 2]",
            b'{"pid": "12", "host": "h", "run_id": "r", "command": "c", "acquired_at": "t"}',
            b'{"pid": true, "host": "h", "run_id": "r", "command": "c", "acquired_at": "t"}',
            b'{"pid": 12, "host": "h", "run_id": "r", "command": "c"}',
            b'{"pid": 12, "host": "h", "run_id": 5, "command": "c", "acquired_at": "t"}',
        ],
    )
    def test_garbage_reads_as_none(self, data: bytes):
        """Unreadable or ill-typed records give None, never an error."""
        assert Holder.from_line(data) is None

    def test_only_first_line_counts(self):
        """A longer old record behind the new first line does not spoil it."""
        data = holder("new").to_line() + b'ld-tail-of-an-older-record"}\n'
        assert Holder.from_line(data) == holder("new")

    def test_for_this_process(self):
        """for_this_process names this pid and host and stamps UTC time."""
        h = Holder.for_this_process("r", "down --to 1")
        assert (h.pid, h.host, h.run_id, h.command) == (
            os.getpid(),
            socket.gethostname(),
            "r",
            "down --to 1",
        )
        assert h.acquired_at.endswith("Z")


class TestMigrationLock:
    def test_acquire_records_holder(self, lock_path: Path):
        """After acquire, the file names the holder and probe reports it held."""
        lock = MigrationLock(lock_path)
        lock.acquire(holder(), timeout=0)
        try:
            assert lock.held and lock.holder == holder()
            assert Holder.from_line(lock_path.read_bytes()) == holder()
            assert probe(lock_path) == LockStatus(held=True, holder=holder())
        finally:
            lock.release()

    def test_file_mode_is_0600(self, lock_path: Path):
        """The lock file is created readable and writable by its owner only."""
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
        assert lock_path.stat().st_mode & 0o777 == 0o600

    def test_release_frees_and_clears(self, lock_path: Path):
        """A clean release leaves a free lock with no holder record."""
        lock = MigrationLock(lock_path)
        lock.acquire(holder(), timeout=0)
        lock.release()
        assert not lock.held and lock.holder is None
        assert probe(lock_path) == LockStatus(held=False, holder=None)
        assert lock_path.exists()  # never deleted

    def test_release_twice_is_harmless(self, lock_path: Path):
        """Releasing a lock not held does nothing."""
        lock = MigrationLock(lock_path)
        lock.release()
        lock.acquire(holder(), timeout=0)
        lock.release()
        lock.release()
        assert not lock.held

    def test_two_objects_exclude_each_other(self, lock_path: Path):
        """A second MigrationLock in the same process cannot take a held lock."""
        first, second = MigrationLock(lock_path), MigrationLock(lock_path)
        first.acquire(holder("run-a", "up"), timeout=0)
        try:
            with pytest.raises(LockTimeout):
                second.acquire(holder("run-b"), timeout=0)
            assert not second.held
        finally:
            first.release()
        second.acquire(holder("run-b"), timeout=0)
        second.release()

    def test_timeout_names_the_holder(self, lock_path: Path):
        """LockTimeout names pid, host, run id, command and since when, with a hint."""
        first = MigrationLock(lock_path)
        first.acquire(holder("run-a", "up --to 7"), timeout=0)
        try:
            with pytest.raises(LockTimeout) as info:
                MigrationLock(lock_path).acquire(holder("run-b"), timeout=0)
        finally:
            first.release()
        msg = str(info.value)
        for part in ("pid 4242", "host box", "run-a", "up --to 7", "2026-01-02T03:04:05.000000Z"):
            assert part in msg
        assert "schemalog lock status" in msg
        assert info.value.exit_code == 3
        assert info.value.path == str(lock_path)

    def test_waits_until_timeout_and_calls_on_wait(self, lock_path: Path):
        """A held lock is polled until the timeout; on_wait sees the holder and growing waits."""
        first = MigrationLock(lock_path)
        first.acquire(holder("run-a"), timeout=0)
        calls: list[tuple[Holder | None, float]] = []
        started = time.monotonic()
        try:
            with pytest.raises(LockTimeout):
                MigrationLock(lock_path).acquire(
                    holder("run-b"), timeout=0.4, on_wait=lambda h, w: calls.append((h, w))
                )
        finally:
            first.release()
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 2.0
        assert len(calls) >= 2
        assert all(h == holder("run-a") for h, _ in calls)
        waits = [w for _, w in calls]
        assert waits == sorted(waits) and waits[0] < 0.05

    def test_backoff_starts_at_50ms_and_caps_at_500ms(self, lock_path: Path, monkeypatch):
        """Sleeps double from 50 ms up to 500 ms, and the last one ends at the timeout."""
        clock = [0.0]
        sleeps: list[float] = []

        def fake_sleep(seconds: float) -> None:
            sleeps.append(round(seconds, 6))
            clock[0] += seconds

        monkeypatch.setattr(lock_module, "_sleep", fake_sleep)
        monkeypatch.setattr(lock_module, "_clock", lambda: clock[0])
        first = MigrationLock(lock_path)
        first.acquire(holder(), timeout=0)
        try:
            with pytest.raises(LockTimeout):
                MigrationLock(lock_path).acquire(holder("b"), timeout=2.0)
        finally:
            first.release()
        assert sleeps[:6] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
        assert sum(sleeps) == pytest.approx(2.0)

    def test_acquires_once_released_while_waiting(self, lock_path: Path):
        """A waiter gets the lock when the holder releases it within the timeout."""
        first = MigrationLock(lock_path)
        first.acquire(holder("run-a"), timeout=0)
        timer = threading.Timer(0.3, first.release)
        timer.start()
        waited: list[float] = []
        second = MigrationLock(lock_path)
        try:
            second.acquire(holder("run-b"), timeout=10, on_wait=lambda h, w: waited.append(w))
            assert second.held
            assert probe(lock_path).holder == holder("run-b")
            assert waited
        finally:
            timer.join()
            second.release()

    def test_context_manager_releases_on_error(self, lock_path: Path):
        """Leaving the with-block, even by an exception, releases the lock."""
        with pytest.raises(ValueError), MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
            raise ValueError("boom")
        assert not probe(lock_path).held

    def test_not_reentrant(self, lock_path: Path):
        """Acquiring again through the same object is a programming error."""
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
            with pytest.raises(RuntimeError):
                lock.acquire(holder(), timeout=0)
            assert lock.held

    def test_a_record_the_disk_cannot_take_does_not_fail_the_lock(
        self, lock_path: Path, monkeypatch
    ):
        """A disk too full for the holder record still gives the lock (the record only names
        the holder; `held` comes from the kernel); the file is left without a stale record."""

        def broken_pwrite(fd, data, offset):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(lock_module.os, "pwrite", broken_pwrite)
        lock = MigrationLock(lock_path)
        lock.acquire(holder(), timeout=0)
        assert lock.held
        assert probe(lock_path) == LockStatus(held=True, holder=None)
        lock.release()
        monkeypatch.undo()
        assert not probe(lock_path).held

    def test_missing_directory_is_config_error(self, tmp_path: Path):
        """A lock file in a directory that does not exist raises ConfigError naming it."""
        path = tmp_path / "nowhere" / "app.db.lock"
        with pytest.raises(ConfigError) as info:
            MigrationLock(path).acquire(holder(), timeout=0)
        assert str(path) in str(info.value)

    def test_unopenable_lock_file_is_config_error(self, lock_path: Path):
        """A lock path that cannot be opened for writing raises ConfigError."""
        lock_path.mkdir()
        with pytest.raises(ConfigError):
            MigrationLock(lock_path).acquire(holder(), timeout=0)

    def test_garbage_file_is_overwritten(self, lock_path: Path):
        """A lock file with garbage does not prevent acquiring; the record is replaced."""
        lock_path.write_bytes(b"\x00\x01 not json at all\n" * 100)
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
            assert lock_path.read_bytes() == holder().to_line()

    def test_timeout_with_unreadable_record(self, lock_path: Path):
        """A held lock whose record is garbage times out naming an unknown holder."""
        first = MigrationLock(lock_path)
        first.acquire(holder(), timeout=0)
        lock_path.write_bytes(b"garbage")
        try:
            with pytest.raises(LockTimeout) as info:
                MigrationLock(lock_path).acquire(holder("b"), timeout=0)
        finally:
            first.release()
        assert "unreadable" in str(info.value)


class TestAcrossProcesses:
    def test_child_holds_lock(self, lock_path: Path, child: subprocess.Popen):
        """A lock held by another process is seen as held, naming that process."""
        status = probe(lock_path)
        assert status.held
        assert status.holder is not None
        assert (status.holder.pid, status.holder.run_id, status.holder.command) == (
            child.pid,
            "run-child",
            "up --to 3",
        )
        with pytest.raises(LockTimeout) as info:
            MigrationLock(lock_path).acquire(holder(), timeout=0.2)
        assert f"pid {child.pid}" in str(info.value)

    def test_sigkill_frees_the_lock(self, lock_path: Path, child: subprocess.Popen):
        """After the holder is killed with SIGKILL the lock is free; the stale record remains."""
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        status = probe(lock_path)
        assert not status.held
        assert status.holder is not None and status.holder.pid == child.pid
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
            assert lock.held

    def test_break_lock_refuses_live_holder(self, lock_path: Path, child: subprocess.Popen):
        """break_lock on a live holder raises LockHeld naming it and changes nothing."""
        before = lock_path.read_bytes()
        with pytest.raises(LockHeld) as info:
            break_lock(lock_path)
        assert not isinstance(info.value, LockTimeout)
        assert f"pid {child.pid}" in str(info.value)
        assert lock_path.read_bytes() == before
        assert probe(lock_path).held

    def test_break_lock_clears_dead_holder(self, lock_path: Path, child: subprocess.Popen):
        """break_lock after the holder died returns its record and clears it."""
        child.kill()
        child.wait()
        broken = break_lock(lock_path)
        assert broken is not None and broken.pid == child.pid
        assert probe(lock_path) == LockStatus(held=False, holder=None)


class TestProbe:
    def test_missing_file_is_free_and_not_created(self, lock_path: Path):
        """probe of a lock file that does not exist says free and creates nothing."""
        assert probe(lock_path) == LockStatus(held=False, holder=None)
        assert not lock_path.exists()

    def test_garbage_file(self, lock_path: Path):
        """probe of a garbage lock file says free with no holder."""
        lock_path.write_bytes(b"\xff\xfe{{{")
        assert probe(lock_path) == LockStatus(held=False, holder=None)

    def test_probe_does_not_take_the_lock(self, lock_path: Path):
        """After probing, the lock can be taken at once."""
        lock_path.write_bytes(holder().to_line())
        probe(lock_path)
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)

    def test_directory_at_lock_path(self, lock_path: Path):
        """A directory in place of the lock file reads as free with no holder, not a crash."""
        lock_path.mkdir()
        assert probe(lock_path) == LockStatus(held=False, holder=None)

    def test_unreadable_path_is_config_error(self, tmp_path: Path):
        """A lock path whose parent is a file raises ConfigError."""
        parent = tmp_path / "file"
        parent.write_text("x")
        with pytest.raises(ConfigError):
            probe(parent / "app.db.lock")


class TestBreakLock:
    def test_missing_file(self, lock_path: Path):
        """break_lock of a missing lock file returns None."""
        assert break_lock(lock_path) is None
        assert not lock_path.exists()

    def test_stale_record(self, lock_path: Path):
        """A record with no live holder is returned and cleared."""
        lock_path.write_bytes(holder("dead-run").to_line())
        assert break_lock(lock_path) == holder("dead-run")
        assert lock_path.read_bytes() == b""

    def test_garbage_record(self, lock_path: Path):
        """A garbage record gives None and is cleared."""
        lock_path.write_bytes(b"garbage")
        assert break_lock(lock_path) is None
        assert lock_path.read_bytes() == b""

    def test_refuses_lock_held_in_this_process(self, lock_path: Path):
        """A lock held by another object of this process cannot be broken."""
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder("live-run"), timeout=0)
            with pytest.raises(LockHeld) as info:
                break_lock(lock_path)
            assert "live-run" in str(info.value)
            assert probe(lock_path).holder == holder("live-run")

    def test_refuses_unrecorded_live_holder(self, lock_path: Path):
        """A live holder whose record is garbage is still refused, as unrecorded."""
        with MigrationLock(lock_path) as lock:
            lock.acquire(holder(), timeout=0)
            lock_path.write_bytes(b"garbage")
            with pytest.raises(LockHeld) as info:
                break_lock(lock_path)
        assert "unrecorded" in str(info.value)

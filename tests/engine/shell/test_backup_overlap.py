"""A plain backup's check and flush overlap the end of its hash; the hash stops when the
backup is abandoned; a new copy is checked through a memory map, a kept backup never is."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

import schemalog.engine.shell.backup as backup_module
import schemalog.engine.shell.copy as copy_module
from schemalog.engine.base.errors import BackupVerificationFailed
from schemalog.engine.shell.backup import take_backup, take_backup_deferred
from schemalog.engine.shell.backup_file import open_for_check, verify_backup
from tests.engine.shell.test_backup import make_db


def backup_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("schemalog-backup")]


@pytest.mark.parametrize("deferred", [False, True])
def test_the_check_starts_before_the_hash_ends(tmp_path: Path, monkeypatch, deferred: bool):
    """The hash cannot finish until the check has started: the backup still completes
    (with the check after the hash, as before, it would wait forever; 10 s bound)."""
    db = make_db(tmp_path / "app.db")
    check_started = threading.Event()
    real_hash, real_check = copy_module._hash_range, backup_module.check_connection

    def hash_after_check(fd: int, size: int, stop: threading.Event) -> str:
        assert check_started.wait(10), "the check did not start while the hash ran"
        return real_hash(fd, size, stop)

    def check(*args, **kwargs):
        check_started.set()
        return real_check(*args, **kwargs)

    monkeypatch.setattr(copy_module, "_hash_range", hash_after_check)
    monkeypatch.setattr(backup_module, "check_connection", check)
    if deferred:
        record, wait = take_backup_deferred(db, tmp_path / "b")
        wait()
    else:
        record = take_backup(db, tmp_path / "b")
    data = (tmp_path / "b" / record.path).read_bytes()
    assert data == db.read_bytes()
    assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert record.verified is not deferred
    assert backup_threads() == []


def test_an_abandoned_copy_stops_its_hash(tmp_path: Path, monkeypatch):
    """Leaving the copy's block early ends the hash at its next chunk, not at the file's end."""
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(4096 * 400))
    target = tmp_path / "target.bin"
    target.write_bytes(b"")
    monkeypatch.setattr(copy_module, "_RAW_CHUNK", 4096)
    reads: list[int] = []
    real_read = copy_module.read_at
    first = threading.Event()

    def slow_read(fd: int, count: int, offset: int) -> bytes:
        reads.append(offset)
        first.set()
        threading.Event().wait(0.005)
        return real_read(fd, count, offset)

    monkeypatch.setattr(copy_module, "read_at", slow_read)
    kept: list = []
    with (
        pytest.raises(KeyError, match="left early"),
        copy_module.raw_copy(source, target, None, 0) as (_size, digest),
    ):
        kept.append(digest)
        assert first.wait(10)
        raise KeyError("left early")
    assert backup_threads() == []
    assert 0 < len(reads) < 400
    with pytest.raises(RuntimeError, match="abandoned before its hash was complete"):
        kept[0]()  # the digest of part of the file is never handed out


def test_a_failed_check_leaves_no_file_and_no_thread(tmp_path: Path, monkeypatch):
    """A check failing while the hash still runs: nothing is left, the hash is joined."""
    db = make_db(tmp_path / "app.db")

    def failing(conn, path, integrity, label):
        conn.close()
        raise BackupVerificationFailed(f"{label} fails PRAGMA quick_check: bad", path=str(path))

    monkeypatch.setattr(backup_module, "check_connection", failing)
    with pytest.raises(BackupVerificationFailed, match="fails PRAGMA quick_check"):
        take_backup(db, tmp_path / "b")
    assert list((tmp_path / "b").iterdir()) == []
    assert backup_threads() == []


def test_only_a_new_copy_is_read_through_a_memory_map(tmp_path: Path, monkeypatch):
    """The new copy's check maps the file; a kept backup (verify, restore) is read plainly,
    so an I/O error there is an error SQLite reports, not a signal."""
    db = make_db(tmp_path / "app.db")
    mapped = open_for_check(db, mapped=True)
    plain = open_for_check(db)
    try:
        assert mapped.execute("PRAGMA mmap_size").fetchone()[0] > 0
        assert plain.execute("PRAGMA mmap_size").fetchone()[0] == 0
    finally:
        mapped.close()
        plain.close()

    seen: list[bool] = []
    real_open = backup_module.open_for_check

    def spy(path: Path, functions=None, *, mapped: bool = False) -> sqlite3.Connection:
        seen.append(mapped)
        return real_open(path, functions, mapped=mapped)

    monkeypatch.setattr(backup_module, "open_for_check", spy)
    record = take_backup(db, tmp_path / "b")
    assert seen == [True]
    verify_backup(record, tmp_path / "b" / record.path)  # backup_file's own plain connection
    assert seen == [True]

"""Tests for schemalog.engine.shell.backup: full copies, file modes, gzip, unusable dirs, disk full, concurrency."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

import schemalog.engine.shell.backup as backup_module
import schemalog.engine.shell.backup_file as backup_file_module
import schemalog.engine.shell.copy as copy_module
from schemalog.engine.base.connection import sqlite_uri
from schemalog.engine.base.errors import (
    BackupError,
    BackupUnusable,
    BackupVerificationFailed,
    UsageError,
)
from schemalog.engine.shell.backup import take_backup
from schemalog.engine.shell.backup_file import (
    partial_backups,
    remove_backup,
    scan_backups,
    verified_backup,
    verify_backup,
)
from schemalog.journal.replay import BackupRecord


def BackupInfo(id, path, version, created_at, size, sha256, verified, compression):
    """A record of the file `path` as the journal would hold it (name relative to its dir)."""
    return BackupRecord(id, path.name, version, created_at, size, sha256, verified, compression, "")


REPO = Path(__file__).resolve().parents[3]
ID_PATTERN = re.compile(r"^v\d{4}-\d{8}T\d{6}\.\d{6}Z$")


def make_db(path: Path, *, rows: int = 200, version: int = 3, journal_mode: str = "delete") -> Path:
    """Create a database with two tables, an index, `rows` rows and `user_version`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)")
    conn.execute("CREATE INDEX users_name ON users(name)")
    conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (name, blob) VALUES (?, ?)",
        [(f"user {i}", os.urandom(64)) for i in range(rows)],
    )
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("COMMIT")
    conn.close()
    return path


def dump(path: Path) -> tuple[int, list[str]]:
    """`user_version` and the full SQL dump (schema and rows) of the database at `path`."""
    conn = sqlite3.connect(sqlite_uri(path, mode="rw"), uri=True)  # sees a WAL's content too
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0], list(conn.iterdump())
    finally:
        conn.close()


def gunzip_to(src: Path, dst: Path) -> Path:
    """Decompress the gzip file `src` into `dst` and return `dst`."""
    dst.write_bytes(gzip.decompress(src.read_bytes()))
    return dst


def sha256(path: Path) -> str:
    """SHA-256 hex of the file at `path`."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corrupt_freelist_count(path: Path) -> None:
    """Damage `path` so that it still opens and copies but fails PRAGMA quick_check."""
    with path.open("r+b") as f:
        f.seek(36)
        f.write((5).to_bytes(4, "big"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A rollback-journal database with rows, at user_version 3."""
    return make_db(tmp_path / "app.db")


@pytest.fixture
def bdir(tmp_path: Path) -> Path:
    """A backup directory that does not exist yet."""
    return tmp_path / "app.db.backups"


class TestTakeBackup:
    def test_content_equals_source(self, db: Path, bdir: Path):
        """The backup holds the same schema, rows and user_version as the database."""
        info = take_backup(db, bdir)
        assert dump(bdir / info.path) == dump(db)
        assert info.version == 3

    def test_describes_the_file(self, db: Path, bdir: Path):
        """BackupInfo names the final file, its size, SHA-256, version and UTC time."""
        info = take_backup(db, bdir, run_id="r1")
        assert ID_PATTERN.match(info.id)
        assert info.id.startswith("v0003-")
        assert (bdir / info.path) == bdir / f"{info.id}.sqlite"
        assert info.size == (bdir / info.path).stat().st_size
        assert info.sha256 == sha256(bdir / info.path)
        assert info.verified and info.compression == "none"
        created = datetime.fromisoformat(info.created_at)
        assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
        assert abs((datetime.now(UTC) - created).total_seconds()) < 60

    def test_file_and_dir_modes(self, db: Path, bdir: Path):
        """The backup file is 0600 and a created backup directory is 0700."""
        info = take_backup(db, bdir / "nested")
        assert (bdir / "nested" / info.path).stat().st_mode & 0o777 == 0o600
        assert (bdir / "nested").stat().st_mode & 0o777 == 0o700

    def test_only_the_final_file_is_left(self, db: Path, bdir: Path):
        """After success the directory holds the backup file and nothing else."""
        info = take_backup(db, bdir)
        assert sorted(os.listdir(bdir)) == [(bdir / info.path).name]

    def test_database_is_not_modified(self, db: Path, bdir: Path):
        """Taking a backup leaves the database file byte for byte and mtime unchanged."""
        before = (db.read_bytes(), db.stat().st_mtime_ns)
        take_backup(db, bdir)
        assert (db.read_bytes(), db.stat().st_mtime_ns) == before

    def test_gzip_round_trip(self, db: Path, bdir: Path, tmp_path: Path):
        """A gzip backup is 0600, smaller, and decompresses to the same database."""
        info = take_backup(db, bdir, compression="gzip")
        assert (bdir / info.path).name == f"{info.id}.sqlite.gz" and info.compression == "gzip"
        assert (bdir / info.path).stat().st_mode & 0o777 == 0o600
        assert info.sha256 == sha256(bdir / info.path)
        plain = gunzip_to((bdir / info.path), tmp_path / "plain.sqlite")
        assert dump(plain) == dump(db)
        assert info.size < plain.stat().st_size
        assert sorted(os.listdir(bdir)) == [(bdir / info.path).name]

    def test_wal_database(self, tmp_path: Path, bdir: Path):
        """Rows still in the WAL are in the backup, which is one self-contained rollback-mode file."""
        db = make_db(tmp_path / "wal.db", journal_mode="wal")
        keeper = sqlite3.connect(db, isolation_level=None)  # keeps the WAL from being checkpointed
        keeper.execute("PRAGMA wal_autocheckpoint=0")
        keeper.execute("INSERT INTO ledger (amount) VALUES (42)")
        try:
            assert (tmp_path / "wal.db-wal").stat().st_size > 0
            info = take_backup(db, bdir)
            assert dump(bdir / info.path) == dump(db)
            assert (bdir / info.path).read_bytes()[18:20] == b"\x01\x01"
            assert sorted(os.listdir(bdir)) == [(bdir / info.path).name]
        finally:
            keeper.close()

    def test_progress_reports_pages(self, db: Path, bdir: Path):
        """progress(copied, total) is called per step and ends with copied == total."""
        calls: list[tuple[int, int]] = []
        take_backup(
            db, bdir, progress=lambda done, total: calls.append((done, total)), pages_per_step=2
        )
        assert len(calls) > 2
        assert calls[-1][0] == calls[-1][1] > 0
        assert [c[0] for c in calls] == sorted(c[0] for c in calls)

    @pytest.mark.parametrize(
        ("integrity", "verified"), [("quick", True), ("full", True), ("off", False)]
    )
    def test_integrity_levels(self, db: Path, bdir: Path, integrity: str, verified: bool):
        """verified says whether the copy was checked."""
        assert take_backup(db, bdir, integrity=integrity).verified is verified

    @pytest.mark.parametrize("kw", [{"compression": "zstd"}, {"integrity": "paranoid"}])
    def test_bad_options(self, db: Path, bdir: Path, kw: dict):
        """Unknown compression or integrity is a usage error and creates nothing."""
        with pytest.raises(UsageError):
            take_backup(db, bdir, **kw)
        assert not bdir.exists()

    def test_missing_database(self, tmp_path: Path, bdir: Path):
        """A missing database raises BackupError and is not created."""
        db = tmp_path / "missing.db"
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert str(db) in str(info.value)
        assert not db.exists()

    def test_negative_user_version(self, tmp_path: Path, bdir: Path):
        """A negative user_version gives a usable id that scan_backups reads back."""
        db = make_db(tmp_path / "neg.db", version=-1)
        info = take_backup(db, bdir)
        assert info.version == -1 and info.id.startswith("v-001-")
        assert [b.version for b in scan_backups(bdir)] == [-1]

    def test_same_instant_gets_a_suffix(self, db: Path, bdir: Path, monkeypatch):
        """Two backups in the same microsecond get distinct ids."""
        frozen = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

        monkeypatch.setattr(backup_module, "utc_now", lambda: frozen)
        first = take_backup(db, bdir)
        second = take_backup(db, bdir, compression="gzip")
        third = take_backup(db, bdir)
        assert first.id == "v0003-20260102T030405.678901Z"
        assert second.id == first.id + "-1"
        assert third.id == first.id + "-2"
        assert [b.id for b in scan_backups(bdir)] == [first.id, second.id, third.id]

    def test_damaged_source_is_refused(self, db: Path, bdir: Path):
        """A copy failing its integrity check raises BackupVerificationFailed and is deleted."""
        corrupt_freelist_count(db)
        with pytest.raises(BackupVerificationFailed) as info:
            take_backup(db, bdir)
        assert "quick_check" in str(info.value) and "schemalog verify" in str(info.value)
        assert os.listdir(bdir) == []


class TestUnusableBackupDir:
    def test_parent_is_a_file(self, db: Path, tmp_path: Path):
        """A backup dir that cannot be created raises BackupUnusable (exit 2) naming it."""
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        with pytest.raises(BackupUnusable) as info:
            take_backup(db, blocker / "backups")
        assert info.value.exit_code == 2
        assert str(blocker / "backups") in str(info.value)
        assert "--backup-dir" in str(info.value)

    def test_dir_is_a_file(self, db: Path, tmp_path: Path):
        """A regular file in place of the backup dir raises BackupUnusable."""
        target = tmp_path / "backups"
        target.write_text("x")
        with pytest.raises(BackupUnusable):
            take_backup(db, target)

    def test_not_writable(self, db: Path, bdir: Path, monkeypatch):
        """A directory without write permission raises BackupUnusable."""
        bdir.mkdir()
        monkeypatch.setattr(backup_module.os, "access", lambda path, mode: False)
        with pytest.raises(BackupUnusable) as info:
            take_backup(db, bdir)
        assert "not writable" in str(info.value)

    @pytest.mark.parametrize(
        "error",
        [
            PermissionError(errno.EACCES, "Permission denied"),
            OSError(errno.EROFS, "Read-only file system"),
        ],
    )
    def test_refuses_new_files(self, db: Path, bdir: Path, monkeypatch, error: OSError):
        """A directory refusing the temporary file (EACCES, EROFS) raises BackupUnusable."""

        def refuse(path):
            raise error

        monkeypatch.setattr(backup_module, "create_private_file", refuse)
        with pytest.raises(BackupUnusable):
            take_backup(db, bdir)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
    def test_read_only_dir(self, db: Path, bdir: Path):
        """A read-only directory raises BackupUnusable."""
        bdir.mkdir(mode=0o500)
        with pytest.raises(BackupUnusable):
            take_backup(db, bdir)


class TestCopyFailures:
    def assert_clean(self, db: Path, bdir: Path, before: bytes) -> None:
        """No file is left in the backup dir and the database is unchanged."""
        assert os.listdir(bdir) == []
        assert db.read_bytes() == before

    def test_fsync_disk_full(self, db: Path, bdir: Path, monkeypatch):
        """ENOSPC while syncing the copy raises BackupError saying disk full; nothing is left."""
        before = db.read_bytes()

        def full(path):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(backup_module, "fsync_file", full)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert not isinstance(info.value, BackupUnusable)
        assert "disk full" in str(info.value)
        self.assert_clean(db, bdir, before)

    def test_gzip_write_disk_full(self, db: Path, bdir: Path, monkeypatch):
        """ENOSPC while writing the compressed file raises BackupError; no tmp file is left."""
        before = db.read_bytes()
        real_open = copy_module.open_private_file

        class FullFile:
            def __init__(self, path):
                self._f = real_open(path)

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

        monkeypatch.setattr(copy_module, "open_private_file", FullFile)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir, compression="gzip")
        assert "disk full" in str(info.value)
        self.assert_clean(db, bdir, before)

    def test_sqlite_full(self, db: Path, bdir: Path, monkeypatch):
        """SQLITE_FULL from the copy itself raises BackupError saying disk full."""
        before = db.read_bytes()
        real_open = copy_module.open_database

        def small_target(target, *args, **kw):
            conn = real_open(target, *args, **kw)
            if str(target).endswith(".sqlite.tmp"):
                conn.execute("PRAGMA max_page_count=2")
            return conn

        monkeypatch.setattr(copy_module, "open_database", small_target)
        monkeypatch.setattr(backup_module, "_stable_single_file", lambda *_a: False)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert "disk full" in str(info.value)
        self.assert_clean(db, bdir, before)

    def test_disk_full_during_raw_copy(self, db: Path, bdir: Path, monkeypatch):
        """ENOSPC while the raw copy writes raises BackupError saying disk full, leaving nothing."""
        before = db.read_bytes()

        def full(*_a, **_kw):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(copy_module.os, "copy_file_range", full)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert "disk full" in str(info.value)
        self.assert_clean(db, bdir, before)

    def test_copy_without_copy_file_range(self, db: Path, bdir: Path, monkeypatch):
        """Where the kernel cannot copy (EXDEV), the copy goes through user space, same bytes."""

        def unsupported(*_a, **_kw):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(copy_module.os, "copy_file_range", unsupported)
        info = take_backup(db, bdir, pages_per_step=1)
        assert (bdir / info.path).read_bytes() == db.read_bytes()
        assert info.sha256 == hashlib.sha256(db.read_bytes()).hexdigest()

    def test_other_os_error(self, db: Path, bdir: Path, monkeypatch):
        """Any other OSError while creating the copy raises BackupError naming the reason."""

        def broken(path):
            raise OSError(errno.EIO, "Input/output error", str(path))

        monkeypatch.setattr(backup_module, "create_private_file", broken)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert "Input/output error" in str(info.value)
        assert not isinstance(info.value, BackupUnusable)

    def test_not_a_database(self, tmp_path: Path, bdir: Path):
        """A database file that is not SQLite raises BackupError saying so; nothing is left."""
        db = tmp_path / "junk.db"
        db.write_bytes(b"junk" * 1000)
        with pytest.raises(BackupError) as info:
            take_backup(db, bdir)
        assert "not a database" in str(info.value)
        assert os.listdir(bdir) == []

    @pytest.mark.parametrize(
        ("mode", "message"),
        [
            ("garbled", "does not decompress to the copy"),
            ("trailing", "data after its end"),
            ("truncated", "is truncated"),
            ("undecodable", "does not decompress"),
        ],
    )
    def test_gzip_round_trip_failure(
        self, db: Path, bdir: Path, monkeypatch, mode: str, message: str
    ):
        """A compressed file that does not decompress to the copy is refused and removed."""
        real_gzipfile = gzip.GzipFile

        class Faulty(real_gzipfile):
            def __init__(self, *args, fileobj=None, **kw):
                self._raw = fileobj
                super().__init__(*args, fileobj=fileobj, **kw)

            def write(self, data):
                return super().write(bytes(reversed(data)) if mode == "garbled" else data)

            def close(self):
                super().close()
                self._raw.flush()
                end = os.fstat(self._raw.fileno()).st_size
                if mode == "trailing":
                    self._raw.write(b"trailing junk")
                elif mode == "truncated":
                    os.ftruncate(self._raw.fileno(), end - 12)
                elif mode == "undecodable":
                    os.pwrite(self._raw.fileno(), b"\xff" * 64, end // 2)

        monkeypatch.setattr(gzip, "GzipFile", Faulty)
        with pytest.raises(BackupVerificationFailed) as info:
            take_backup(db, bdir, compression="gzip")
        assert message in str(info.value)
        assert os.listdir(bdir) == []

    def test_gzip_of_zero_pages(self, tmp_path: Path, bdir: Path):
        """A database of mostly zero bytes (a thousandfold compression) round-trips."""
        db = make_db(tmp_path / "zeros.db", rows=10)
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("INSERT INTO users (blob) VALUES (zeroblob(20000000))")
        conn.close()
        info = take_backup(db, bdir, compression="gzip")
        assert info.size < 200_000
        verify_backup(info, bdir / info.path)

    def test_progress_exception_cleans_up(self, db: Path, bdir: Path):
        """An exception raised by the progress callback propagates and leaves no file."""

        def stop(done, total):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            take_backup(db, bdir, progress=stop, pages_per_step=1)
        assert os.listdir(bdir) == []

    def test_database_locked(self, db: Path, bdir: Path, monkeypatch):
        """A database kept locked by a writer raises BackupError saying so."""
        monkeypatch.setattr(backup_module, "_BUSY_TIMEOUT_S", 0.1)
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(BackupError) as info:
                take_backup(db, bdir)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert "locked" in str(info.value)
        assert "write transaction" in str(info.value)
        assert os.listdir(bdir) == []

    def test_real_file_size_limit(self, tmp_path: Path):
        """A real write error (RLIMIT_FSIZE) in a subprocess gives BackupError and no partial file."""
        db = make_db(tmp_path / "big.db", rows=5000)
        bdir = tmp_path / "backups"
        script = (
            "import resource, signal, sys\n"
            "from pathlib import Path\n"
            "from schemalog.engine.shell.backup import take_backup\n"
            "from schemalog.engine.base.errors import BackupError\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))\n"
            "try:\n"
            "    take_backup(Path(sys.argv[1]), Path(sys.argv[2]))\n"
            "except BackupError as e:\n"
            "    print('BackupError', e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(db), str(bdir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert out.startswith("BackupError"), out
        assert os.listdir(bdir) == []


class TestConcurrentWriters:
    @pytest.mark.parametrize("journal_mode", ["delete", "wal"])
    def test_writer_thread_during_backup(self, tmp_path: Path, bdir: Path, journal_mode: str):
        """A writer committing during a backup still yields a consistent, checked copy."""
        db = make_db(tmp_path / "busy.db", rows=20000, journal_mode=journal_mode)
        stop = threading.Event()
        commits = [0]

        def write() -> None:
            conn = sqlite3.connect(db, isolation_level=None, timeout=30)
            while not stop.is_set():
                # Invariant kept by every transaction: the ledger sums to zero.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO ledger (amount) VALUES (7)")
                conn.execute("INSERT INTO ledger (amount) VALUES (-7)")
                conn.execute("UPDATE users SET name = name || '.' WHERE id = 1")
                conn.execute("COMMIT")
                commits[0] += 1
                time.sleep(0.0005)  # a real application pauses; a tight loop starves readers
            conn.close()

        thread = threading.Thread(target=write)
        thread.start()
        while commits[0] < 3:  # the writer is under way before the backup starts
            time.sleep(0.001)
        during: list[int] = []

        def watch(done: int, total: int) -> None:
            during.append(commits[0])
            if journal_mode == "wal" and len(during) == 1:  # WAL writers go on during a backup
                deadline = time.monotonic() + 10
                while commits[0] == during[0] and time.monotonic() < deadline:
                    time.sleep(0.001)

        try:
            info = take_backup(
                db,
                bdir,
                integrity="full",
                pages_per_step=1,
                progress=watch,
            )
        finally:
            stop.set()
            thread.join()
        conn = sqlite3.connect(sqlite_uri((bdir / info.path), mode="ro", immutable=True), uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("SELECT coalesce(sum(amount), 0) FROM ledger").fetchone() == (0,)
            copied = conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
        finally:
            conn.close()
        assert copied % 2 == 0
        if journal_mode == "wal":
            assert during[-1] > during[0]  # the writer was not blocked by the backup

    def test_copy_is_the_snapshot_at_start(self, tmp_path: Path, bdir: Path):
        """A commit made in the middle of a WAL backup is not in it, and the backup completes."""
        db = make_db(tmp_path / "snap.db", rows=2000, journal_mode="wal")
        writer = sqlite3.connect(db, isolation_level=None)
        expected = dump(db)

        def commit_once(done: int, total: int) -> None:
            if done < total:
                writer.execute("INSERT INTO ledger (amount) VALUES (1)")
                writer.execute("PRAGMA user_version = 9")

        try:
            info = take_backup(db, bdir, pages_per_step=1, progress=commit_once)
        finally:
            writer.close()
        assert dump(bdir / info.path) == expected
        assert info.version == 3
        assert dump(db)[0] == 9


class TestVerifyBackup:
    @pytest.mark.parametrize("compression", ["none", "gzip"])
    def test_fresh_backup_passes(self, db: Path, bdir: Path, compression: str):
        """A backup just taken verifies at every level."""
        info = take_backup(db, bdir, compression=compression)
        for integrity in ("quick", "full", "off"):
            verify_backup(info, bdir / info.path, integrity=integrity)

    @pytest.mark.parametrize("compression", ["none", "gzip"])
    def test_flipped_byte_is_refused(self, db: Path, bdir: Path, compression: str):
        """A single flipped byte is caught by the SHA-256 check."""
        info = take_backup(db, bdir, compression=compression)
        data = bytearray((bdir / info.path).read_bytes())
        data[len(data) // 2] ^= 0x01
        (bdir / info.path).write_bytes(bytes(data))
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "sha256" in str(err.value) and info.id in str(err.value)

    def test_missing_file(self, db: Path, bdir: Path):
        """A backup whose file is gone fails, saying it is missing."""
        info = take_backup(db, bdir)
        (bdir / info.path).unlink()
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "missing" in str(err.value)

    def test_unreadable_file(self, db: Path, bdir: Path, monkeypatch):
        """A file that cannot be read fails verification."""
        info = take_backup(db, bdir)

        def unreadable(path):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(backup_file_module, "hash_file", unreadable)
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "cannot be read" in str(err.value)

    def test_wrong_version_in_record(self, db: Path, bdir: Path):
        """A record whose version differs from the file's user_version fails."""
        info = take_backup(db, bdir)
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(attrs.evolve(info, version=4), bdir / info.path)
        assert "user_version 3" in str(err.value)

    def test_damaged_database_with_matching_checksum(self, db: Path, bdir: Path):
        """A damaged database recorded with its own checksum fails the integrity check."""
        info = take_backup(db, bdir)
        corrupt_freelist_count(bdir / info.path)
        damaged = attrs.evolve(info, sha256=sha256(bdir / info.path))
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(damaged, bdir / damaged.path)
        assert "quick_check" in str(err.value)
        verify_backup(
            damaged, bdir / damaged.path, integrity="off"
        )  # "off" checks the checksum and version only

    def test_not_a_database(self, bdir: Path):
        """A file that is not SQLite fails as unreadable."""
        bdir.mkdir()
        path = bdir / "v0001-20260101T000000.000000Z.sqlite"
        path.write_bytes(b"not a database" * 100)
        info = BackupInfo("x", path, 1, "t", path.stat().st_size, sha256(path), False, "none")
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "not a readable SQLite database" in str(err.value)

    def test_bad_gzip(self, bdir: Path):
        """A .gz file that does not decompress fails, and no temporary file is left."""
        bdir.mkdir()
        path = bdir / "v0001-20260101T000000.000000Z.sqlite.gz"
        path.write_bytes(b"\x1f\x8b\x08\x00garbage")
        info = BackupInfo("x", path, 1, "t", path.stat().st_size, sha256(path), False, "gzip")
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "does not decompress" in str(err.value)
        assert os.listdir(bdir) == [path.name]

    def test_decompression_disk_full(self, db: Path, bdir: Path, monkeypatch):
        """No room to decompress for checking fails verification saying disk full."""
        info = take_backup(db, bdir, compression="gzip")

        def full(src, dst, length=0):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(shutil, "copyfileobj", full)
        with pytest.raises(BackupVerificationFailed) as err:
            verify_backup(info, bdir / info.path)
        assert "disk full" in str(err.value)
        assert os.listdir(bdir) == [(bdir / info.path).name]

    def test_bad_integrity_option(self, db: Path, bdir: Path):
        """An unknown integrity level is a usage error."""
        info = take_backup(db, bdir)
        with pytest.raises(UsageError):
            verify_backup(info, bdir / info.path, integrity="maybe")

    def test_verified_backup_yields_plain_sqlite(self, db: Path, bdir: Path):
        """For gzip, verified_backup yields a 0600 decompressed copy, removed on exit."""
        info = take_backup(db, bdir, compression="gzip")
        with verified_backup(info, bdir / info.path) as plain:
            assert plain != (bdir / info.path)
            assert plain.stat().st_mode & 0o777 == 0o600
            assert dump(plain) == dump(db)
        assert not plain.exists()
        assert os.listdir(bdir) == [(bdir / info.path).name]


class TestPartialBackups:
    def test_only_the_names_schemalog_writes(self, db: Path, bdir: Path):
        """An interrupted backup's copy and verify files are partial; a user's `*.tmp` is not."""
        info = take_backup(db, bdir)
        ours = [
            f"{info.id}.sqlite.tmp",
            "v0002-20260101T000000.000000Z-3.sqlite.gz.tmp",
            f".{info.id}.k2j_9x.verify.tmp",
        ]
        theirs = ["notes.tmp", "v0002.sqlite.tmp", f"{info.id}.tmp", "x.verify.tmp"]
        for name in ours + theirs:
            (bdir / name).write_bytes(b"partial")
        assert sorted(p.name for p in partial_backups(bdir)) == sorted(ours)
        assert partial_backups(bdir / "nope") == []


class TestScanBackups:
    def test_missing_dir(self, tmp_path: Path):
        """A backup dir that does not exist holds no backups."""
        assert scan_backups(tmp_path / "nope") == []

    def test_lists_what_take_backup_wrote(self, db: Path, bdir: Path):
        """scan_backups finds each backup, oldest first, as take_backup described it, unverified."""
        first = take_backup(db, bdir)
        second = take_backup(db, bdir, compression="gzip")
        assert scan_backups(bdir) == [
            attrs.evolve(first, verified=False),
            attrs.evolve(second, verified=False),
        ]

    def test_ignores_other_files(self, db: Path, bdir: Path):
        """Temporary files, pre-restore directories and foreign files are not backups."""
        info = take_backup(db, bdir)
        (bdir / f"{info.id}.sqlite.tmp").write_bytes(b"partial")
        (bdir / "v0002-20260101T000000.000000Z.sqlite.gz.tmp").write_bytes(b"partial")
        (bdir / "pre-restore-20260101T000000.000000Z").mkdir()
        (bdir / "v0009-20260101T000000.000000Z.sqlite").mkdir()
        (bdir / "notes.txt").write_text("hello")
        assert [b.id for b in scan_backups(bdir)] == [info.id]

    @pytest.mark.parametrize(
        ("name", "content"),
        [
            ("v0007-20260101T000000.000000Z.sqlite", b"garbage"),
            ("v0007-20260101T000000.000000Z.sqlite.gz", b"garbage"),
            ("v0007-20260101T000000.000000Z.sqlite.gz", gzip.compress(b"not sqlite" * 20)),
        ],
    )
    def test_unreadable_header_uses_name(self, bdir: Path, name: str, content: bytes):
        """A file whose header is unreadable is listed with the version from its name."""
        bdir.mkdir()
        (bdir / name).write_bytes(content)
        (found,) = scan_backups(bdir)
        assert (found.version, found.created_at, found.verified) == (
            7,
            "2026-01-01T00:00:00.000000Z",
            False,
        )

    def test_header_version_wins_over_name(self, db: Path, bdir: Path):
        """The version comes from the file itself, not from its name."""
        info = take_backup(db, bdir)
        renamed = (bdir / info.path).with_name("v0099-20200101T000000.000000Z.sqlite")
        (bdir / info.path).rename(renamed)
        (found,) = scan_backups(bdir)
        assert found.version == 3 and found.id == "v0099-20200101T000000.000000Z"

    def test_file_vanishing_while_scanned(self, db: Path, bdir: Path, monkeypatch):
        """A file that cannot be hashed is skipped."""
        take_backup(db, bdir)

        def vanished(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")

        monkeypatch.setattr(backup_file_module, "hash_file", vanished)
        assert scan_backups(bdir) == []


class TestRemoveBackup:
    def test_removes_and_tolerates_missing(self, db: Path, bdir: Path):
        """remove_backup deletes the file; a second call is fine."""
        info = take_backup(db, bdir)
        remove_backup(info, bdir / info.path)
        assert not (bdir / info.path).exists()
        remove_backup(info, bdir / info.path)

    def test_missing_dir(self, tmp_path: Path):
        """Removing a backup whose directory is gone is fine."""
        info = BackupInfo("x", tmp_path / "gone" / "x.sqlite", 1, "t", 0, "", False, "none")
        remove_backup(info, tmp_path / "gone" / "x.sqlite")

    def test_cannot_remove(self, db: Path, bdir: Path, monkeypatch):
        """A file that cannot be removed raises BackupError naming it."""
        info = take_backup(db, bdir)

        def refuse(self, missing_ok=False):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(Path, "unlink", refuse)
        with pytest.raises(BackupError) as err:
            remove_backup(info, bdir / info.path)
        assert str(bdir / info.path) in str(err.value)


class TestSqliteUri:
    def test_odd_file_names(self, tmp_path: Path):
        """Paths with ?, # and % open the right file."""
        path = make_db(tmp_path / "we?ird#na%me.db")
        conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
        try:
            assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        finally:
            conn.close()

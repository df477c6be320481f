"""Tests for schemalog.engine.shell.restore and .preserve: old content back, nothing destroyed,
refusals, readers, retries."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import schemalog.engine.shell.preserve as preserve_module
import schemalog.engine.shell.restore as restore_module
from schemalog.engine.base.errors import BackupVerificationFailed, RestoreError, UsageError
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.shell.backup import take_backup
from schemalog.engine.shell.preserve import MANIFEST_NAME, preservation_dir
from schemalog.engine.shell.restore import RestoreResult


def restore_backup(db: Path, info, preserve_to: Path, **kw) -> RestoreResult:
    """The file-level restore of `info` (taken into the `bdir` fixture's directory) into `db`."""
    bdir = next(
        (d for d in (db.parent / "app.db.backups", db.parent / "b") if (d / info.path).exists()),
        db.parent / "app.db.backups",
    )
    return restore_module.restore_backup(
        DatabasePaths.for_database(db, bdir), info, preserve_to, **kw
    )


REPO = Path(__file__).resolve().parents[3]

READER_SCRIPT = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
print(conn.execute("SELECT count(*) FROM users").fetchone()[0], flush=True)
sys.stdin.readline()
print(conn.execute("SELECT count(*) FROM users").fetchone()[0], flush=True)
print(conn.execute("PRAGMA user_version").fetchone()[0], flush=True)
"""

SHARED_LOCK_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002)  # SQLite's SHARED range
    print("free")
except OSError:
    print("shared-lock-held")
"""

CRASH_MID_TRANSACTION = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=2")  # spill to the file: a hot journal is left behind
conn.execute("BEGIN")
conn.execute("UPDATE users SET name = 'half-done'")
os.kill(os.getpid(), 9)
"""


def shared_lock_state(db: Path) -> str:
    """Ask another process whether some connection holds SQLite's SHARED lock on `db`."""
    probe = subprocess.run(
        [sys.executable, "-c", SHARED_LOCK_PROBE, str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip()


def make_db(path: Path, *, rows: int, version: int, journal_mode: str = "delete") -> Path:
    """Create (or extend) a database with `rows` more users and set `user_version`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, pad BLOB)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (name, pad) VALUES (?, ?)",
        [(f"user {i}", os.urandom(100)) for i in range(rows)],
    )
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("COMMIT")
    conn.close()
    return path


def change(path: Path) -> None:
    """Make the database differ from its backup: new rows, a new table, a new version."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO users (name) VALUES ('after the backup')")
    conn.execute("CREATE TABLE extra (x)")
    conn.execute("PRAGMA user_version = 5")
    conn.close()


def dump(path: Path) -> tuple[int, list[str]]:
    """`user_version` and the full SQL dump of the database at `path`."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0], list(conn.iterdump())
    finally:
        conn.close()


def files_of(db: Path) -> dict[str, bytes]:
    """The bytes of the database file and of its -wal and -journal, if present."""
    out = {}
    for name in (db.name, f"{db.name}-wal", f"{db.name}-journal"):
        path = db.with_name(name)
        if path.exists():
            out[name] = path.read_bytes()
    return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A rollback-journal database at user_version 3."""
    return make_db(tmp_path / "app.db", rows=300, version=3)


@pytest.fixture
def bdir(tmp_path: Path) -> Path:
    """The backup directory."""
    return tmp_path / "app.db.backups"


@pytest.fixture
def preserve_to(bdir: Path) -> Path:
    """Where the pre-restore files go."""
    return preservation_dir(bdir, "2026-03-04T05:06:07.080910Z")


class TestPreservationDir:
    def test_format(self, tmp_path: Path):
        """The directory sits in the backup dir, named by the UTC instant."""
        assert preservation_dir(tmp_path, "2026-03-04T05:06:07.080910Z") == (
            tmp_path / "pre-restore-20260304T050607.080910Z"
        )

    def test_offset_converted_to_utc(self, tmp_path: Path):
        """A time with an offset is converted to UTC."""
        assert preservation_dir(tmp_path, "2026-03-04T07:06:07+02:00").name == (
            "pre-restore-20260304T050607.000000Z"
        )

    def test_naive_is_utc(self, tmp_path: Path):
        """A time without an offset is taken as UTC."""
        assert preservation_dir(tmp_path, "2026-03-04T05:06:07").name == (
            "pre-restore-20260304T050607.000000Z"
        )

    def test_pure(self, tmp_path: Path):
        """Computing the directory creates nothing."""
        preservation_dir(tmp_path / "b", "2026-03-04T05:06:07Z")
        assert not (tmp_path / "b").exists()

    def test_bad_time(self, tmp_path: Path):
        """Anything but an ISO-8601 time is a usage error."""
        with pytest.raises(UsageError):
            preservation_dir(tmp_path, "yesterday")


class TestRestore:
    def test_brings_back_old_content(self, db: Path, bdir: Path, preserve_to: Path):
        """After a restore the database holds exactly what the backup holds."""
        info = take_backup(db, bdir)
        expected = dump(db)
        change(db)
        result = restore_backup(db, info, preserve_to)
        assert dump(db) == expected
        assert result == RestoreResult(backup=info, preserved=preserve_to, discarded={"users": 1})

    def test_gzip_backup(self, db: Path, bdir: Path, preserve_to: Path):
        """A gzip backup restores the same content."""
        info = take_backup(db, bdir, compression="gzip")
        expected = dump(db)
        change(db)
        restore_backup(db, info, preserve_to, integrity="full")
        assert dump(db) == expected

    def test_preserves_byte_for_byte(self, db: Path, bdir: Path, preserve_to: Path):
        """The preserved files equal the pre-restore files, with a manifest of their checksums."""
        info = take_backup(db, bdir)
        change(db)
        before = files_of(db)
        result = restore_backup(db, info, preserve_to)
        kept = {
            p.name: p.read_bytes() for p in result.preserved.iterdir() if p.name != MANIFEST_NAME
        }
        assert kept == before
        manifest = json.loads((result.preserved / MANIFEST_NAME).read_text())
        assert manifest["restoring_backup"] == info.id
        assert manifest["database"] == str(db)
        assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
            name: hashlib.sha256(data).hexdigest() for name, data in before.items()
        }

    def test_modes(self, db: Path, bdir: Path, preserve_to: Path):
        """Preserved files are 0600 in a 0700 directory."""
        info = take_backup(db, bdir)
        result = restore_backup(db, info, preserve_to)
        assert result.preserved.stat().st_mode & 0o777 == 0o700
        for path in result.preserved.iterdir():
            assert path.stat().st_mode & 0o777 == 0o600

    def test_wal_database_with_open_connection(self, tmp_path: Path, bdir: Path, preserve_to: Path):
        """In WAL mode the -wal is preserved byte for byte, and a connection of ours keeps its locks."""
        db = make_db(tmp_path / "wal.db", rows=300, version=3, journal_mode="wal")
        info = take_backup(db, bdir)
        expected = dump(db)
        keeper = sqlite3.connect(db, isolation_level=None)
        keeper.execute("PRAGMA wal_autocheckpoint=0")
        keeper.execute("INSERT INTO users (name) VALUES ('only in the wal')")
        try:
            # Snapshot the files from another process: opening and closing them here would
            # itself drop the keeper's POSIX locks.
            snap = tmp_path / "snap"
            snap.mkdir()
            names = [db.name, f"{db.name}-wal"]
            subprocess.run(["cp", *(str(db.with_name(n)) for n in names), str(snap)], check=True)
            assert (snap / names[1]).stat().st_size > 0
            assert shared_lock_state(db) == "shared-lock-held"
            result = restore_backup(db, info, preserve_to)
            assert shared_lock_state(db) == "shared-lock-held"  # no descriptor close dropped it
            for name in names:
                assert (result.preserved / name).read_bytes() == (snap / name).read_bytes()
            assert (result.preserved / f"{db.name}-shm").exists()
            assert keeper.execute("SELECT count(*) FROM users").fetchone() == (300,)
        finally:
            keeper.close()
        assert dump(db) == expected
        preserved = dump(result.preserved / db.name)
        assert "only in the wal" in "".join(preserved[1])

    def test_corrupted_backup_refused(self, db: Path, bdir: Path, preserve_to: Path):
        """A backup with one flipped byte is refused and the database is left unchanged."""
        info = take_backup(db, bdir)
        change(db)
        data = bytearray((bdir / info.path).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bdir / info.path).write_bytes(bytes(data))
        before = files_of(db)
        with pytest.raises(BackupVerificationFailed):
            restore_backup(db, info, preserve_to)
        assert files_of(db) == before
        assert not preserve_to.exists()

    def test_idempotent(self, db: Path, bdir: Path, preserve_to: Path):
        """Restoring twice gives the same content; the first preservation is never overwritten."""
        info = take_backup(db, bdir)
        expected = dump(db)
        change(db)
        changed = files_of(db)
        first = restore_backup(db, info, preserve_to)
        after_first = files_of(db)
        second = restore_backup(db, info, preserve_to)
        assert dump(db) == expected
        assert first.preserved == preserve_to
        assert second.preserved == preserve_to.with_name(preserve_to.name + "-1")
        assert (first.preserved / db.name).read_bytes() == changed[db.name]
        assert (second.preserved / db.name).read_bytes() == after_first[db.name]

    def test_empty_preservation_dir_is_used(self, db: Path, bdir: Path, preserve_to: Path):
        """A preservation directory that exists but is empty is used as is."""
        info = take_backup(db, bdir)
        preserve_to.mkdir(parents=True)
        assert restore_backup(db, info, preserve_to).preserved == preserve_to

    @pytest.mark.parametrize("journal_mode", ["delete", "wal"])
    def test_reader_in_another_process_sees_restored_data(
        self, tmp_path: Path, bdir: Path, preserve_to: Path, journal_mode: str
    ):
        """A reader connection open during the restore sees the restored data afterwards."""
        db = make_db(tmp_path / "r.db", rows=100, version=3, journal_mode=journal_mode)
        info = take_backup(db, bdir)
        make_db(db, rows=50, version=4, journal_mode=journal_mode)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER_SCRIPT, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline().strip() == "150"
            restore_backup(db, info, preserve_to)
            reader.stdin.write("go\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "100"
            assert reader.stdout.readline().strip() == "3"
        finally:
            reader.kill()
            reader.wait()

    def test_reader_in_this_process_sees_restored_data(
        self, db: Path, bdir: Path, preserve_to: Path
    ):
        """An open connection of the caller sees the restored data and stays usable."""
        info = take_backup(db, bdir)
        change(db)
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (301,)
            restore_backup(db, info, preserve_to)
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (300,)
            conn.execute("INSERT INTO users (name) VALUES ('after restore')")
        finally:
            conn.close()
        assert dump(db)[0] == 3

    def test_progress(self, db: Path, bdir: Path, preserve_to: Path):
        """progress(copied, total) ends with copied == total."""
        info = take_backup(db, bdir)
        calls: list[tuple[int, int]] = []
        restore_backup(db, info, preserve_to, progress=lambda d, t: calls.append((d, t)))
        assert calls and calls[-1][0] == calls[-1][1] > 0

    @pytest.mark.parametrize("integrity", ["full", "off"])
    def test_integrity_levels(self, db: Path, bdir: Path, preserve_to: Path, integrity: str):
        """Every integrity level restores the content."""
        info = take_backup(db, bdir)
        expected = dump(db)
        change(db)
        restore_backup(db, info, preserve_to, integrity=integrity)
        assert dump(db) == expected

    def test_bad_integrity(self, db: Path, bdir: Path, preserve_to: Path):
        """An unknown integrity level is a usage error and changes nothing."""
        info = take_backup(db, bdir)
        with pytest.raises(UsageError):
            restore_backup(db, info, preserve_to, integrity="sometimes")
        assert not preserve_to.exists()

    def test_missing_database_is_recreated(self, db: Path, bdir: Path, preserve_to: Path):
        """A database file that is gone is recreated from the backup."""
        info = take_backup(db, bdir)
        expected = dump(db)
        db.unlink()
        result = restore_backup(db, info, preserve_to)
        assert dump(db) == expected
        assert (result.preserved / MANIFEST_NAME).exists()

    def test_hot_journal_is_rolled_back_before_preserving(
        self, db: Path, bdir: Path, preserve_to: Path
    ):
        """A crashed writer's hot journal is rolled back; the preserved copy holds committed data."""
        info = take_backup(db, bdir)
        change(db)
        committed = dump(db)
        subprocess.run([sys.executable, "-c", CRASH_MID_TRANSACTION, str(db)], check=False)
        assert db.with_name(db.name + "-journal").exists()
        result = restore_backup(db, info, preserve_to)
        assert dump(result.preserved / db.name) == committed
        assert not (result.preserved / f"{db.name}-journal").exists()


class TestWritesDuringRestore:
    def test_writers_wait_from_preservation_to_commit(
        self, db: Path, bdir: Path, preserve_to: Path
    ):
        """From the preservation to the copy's COMMIT no other connection can commit, so the
        preserved copy holds every row the restore replaces."""
        info = take_backup(db, bdir)
        expected = dump(db)
        change(db)
        attempts: list[str] = []

        def write_meanwhile(done: int, total: int) -> None:
            if done >= total:  # the last call comes after the copy's COMMIT
                return
            other = sqlite3.connect(db, timeout=0.05, isolation_level=None)
            try:
                other.execute("INSERT INTO users (name) VALUES ('slipped in')")
                attempts.append("committed")
            except sqlite3.OperationalError as exc:
                attempts.append(str(exc))
            finally:
                other.close()

        result = restore_backup(db, info, preserve_to, progress=write_meanwhile)
        assert attempts and all("locked" in a for a in attempts)
        assert dump(db) == expected
        preserved = "".join(dump(result.preserved / db.name)[1])
        assert "after the backup" in preserved and "slipped in" not in preserved


class TestRestoreFailures:
    def test_copy_failure_names_preserved_copy(self, tmp_path: Path, bdir: Path, preserve_to: Path):
        """A copy SQLite refuses (WAL with another page size) raises RestoreError naming the copy."""
        db = tmp_path / "ps.db"
        make_db(db, rows=50, version=3)
        info = take_backup(db, bdir)
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA page_size=8192")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode=wal")
        conn.close()
        change(db)
        before = dump(db)
        with pytest.raises(RestoreError) as err:
            restore_backup(db, info, preserve_to)
        msg = str(err.value)
        assert str(preserve_to) in msg and "byte for byte" in msg
        assert "holds its previous content" in msg
        assert dump(db) == before
        assert dump(preserve_to / db.name) == before

    def test_check_failure_after_copy(self, db: Path, bdir: Path, preserve_to: Path, monkeypatch):
        """A failing check of the restored database raises RestoreError naming the copy."""
        info = take_backup(db, bdir)
        real_check = restore_module._check_live

        def wrong_version(live, info_, integrity):
            real_check(live, attrs.evolve(info_, version=99), integrity)

        monkeypatch.setattr(restore_module, "_check_live", wrong_version)
        with pytest.raises(RestoreError) as err:
            restore_backup(db, info, preserve_to)
        assert "user_version is 3" in str(err.value)
        assert "fails its check" in str(err.value)
        assert str(preserve_to) in str(err.value)

    def test_failed_integrity_after_copy(
        self, db: Path, bdir: Path, preserve_to: Path, monkeypatch
    ):
        """Integrity-check rows other than ok after the copy raise RestoreError."""
        info = take_backup(db, bdir)
        real_check = restore_module._check_live

        class Checked:
            def __init__(self, conn):
                self._conn = conn

            def execute(self, sql, *args):
                if sql.startswith("PRAGMA quick_check"):
                    return iter([("row 7 missing from index",)])
                return self._conn.execute(sql, *args)

        def check(live, info_, integrity):
            return real_check(Checked(live), info_, integrity)

        monkeypatch.setattr(restore_module, "_check_live", check)
        with pytest.raises(RestoreError) as err:
            restore_backup(db, info, preserve_to)
        assert "row 7 missing from index" in str(err.value)

    def test_preservation_disk_full(self, db: Path, bdir: Path, preserve_to: Path, monkeypatch):
        """No room to preserve raises RestoreError; the database and backup dir are unchanged."""
        info = take_backup(db, bdir)
        change(db)
        before = files_of(db)

        def full(path):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(preserve_module, "fsync_dir", full)
        with pytest.raises(RestoreError) as err:
            restore_backup(db, info, preserve_to)
        assert "not changed" in str(err.value)
        assert files_of(db) == before
        assert not preserve_to.exists()
        assert os.listdir(bdir) == [info.path]

    def test_writer_holding_the_database(
        self, db: Path, bdir: Path, preserve_to: Path, monkeypatch
    ):
        """A writer that never lets go makes the restore fail before changing anything."""
        info = take_backup(db, bdir)
        monkeypatch.setattr(restore_module, "_BUSY_TIMEOUT_S", 0.1)
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(RestoreError) as err:
                restore_backup(db, info, preserve_to)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert "locked" in str(err.value)
        assert not preserve_to.exists()

    def test_preserve_to_is_a_file(self, db: Path, bdir: Path, preserve_to: Path):
        """A file in place of the preservation directory is skipped for a fresh sibling."""
        info = take_backup(db, bdir)
        preserve_to.write_text("in the way")
        result = restore_backup(db, info, preserve_to)
        assert result.preserved == preserve_to.with_name(preserve_to.name + "-1")
        assert preserve_to.read_text() == "in the way"

    def test_unwritable_preservation_parent(self, db: Path, tmp_path: Path):
        """A preservation directory that cannot be created raises RestoreError, nothing changed."""
        info = take_backup(db, tmp_path / "b")
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        with pytest.raises(RestoreError) as err:
            restore_backup(db, info, blocker / "pre-restore-x")
        assert "not changed" in str(err.value)


class TestLiveFiles:
    def test_replaced_file_gets_new_descriptor(self, tmp_path: Path):
        """A -journal replaced since it was first opened is read from its new inode."""
        from contextlib import ExitStack

        from schemalog.engine.base.paths import DatabasePaths

        paths = DatabasePaths.for_database(tmp_path / "x.db")
        paths.database.write_bytes(b"db")
        paths.rollback_journal.write_bytes(b"old")
        with ExitStack() as stack:
            files = preserve_module.LiveFiles(paths, stack)
            first = dict(files.refresh())
            paths.rollback_journal.unlink()
            paths.rollback_journal.write_bytes(b"new")
            second = dict(files.refresh())
            assert os.pread(second[paths.rollback_journal], 10, 0) == b"new"
            assert first[paths.database] == second[paths.database]
            paths.rollback_journal.unlink()
            assert paths.rollback_journal not in dict(files.refresh())

    def test_vanishing_file_is_skipped(self, tmp_path: Path, monkeypatch):
        """A file deleted between stat and open is left out."""
        from contextlib import ExitStack

        from schemalog.engine.base.paths import DatabasePaths

        paths = DatabasePaths.for_database(tmp_path / "y.db")
        paths.wal.write_bytes(b"wal")
        real_open = os.open

        def vanish(path, flags, *args):
            if str(path) == str(paths.wal):
                raise FileNotFoundError(errno.ENOENT, "gone")
            return real_open(path, flags, *args)

        monkeypatch.setattr(preserve_module.os, "open", vanish)
        with ExitStack() as stack:
            assert preserve_module.LiveFiles(paths, stack).refresh() == []

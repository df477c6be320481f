"""Planted symbolic links are refused, never followed (invariant 10), through real processes:
at the lock file, the JSONL, `app.db.restore-tmp`, a backup's temporary file and a restore's
preservation directory. Each is refused with exit 2 and a message naming the link, and the file
or directory it points at is left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemalog.journal.clock import iso, stamp
from tests.engine.procs import DB, TIMEOUT, document, make_project, ok, schemalog, seed_rows

JSONL = DB + ".journal.jsonl"
BACKUPS = DB + ".backups"
#: The instant the driver's clock is fixed at, so that time-named paths can be planted.
FIXED = datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def digest(path: Path) -> str:
    """SHA-256 of a file, or of a directory's listing and files."""
    if path.is_dir():
        return hashlib.sha256(
            repr(sorted((p.name, digest(p)) for p in path.iterdir())).encode()
        ).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project at its head with application rows and backups; a victim file and directory
    outside it."""
    root = make_project(tmp_path / "p", count=3)
    ok(schemalog(root, "up", "--to", "1"))
    seed_rows(root / DB, 50)
    ok(schemalog(root, "up"))
    (tmp_path / "victim.txt").write_text("precious\n")
    (tmp_path / "victim-dir").mkdir()
    (tmp_path / "victim-dir" / "keep.txt").write_text("keep\n")
    return root


def plant(link: Path, target: Path) -> None:
    """Replace whatever is at `link` by a symbolic link to `target`."""
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def refused(proc: subprocess.CompletedProcess[str], link: Path) -> None:
    """Exit 2 with the one-line PlantedSymlink message naming `link`."""
    ok(proc, 2)
    assert f"{link} is a symbolic link" in proc.stderr
    assert "never writes through one" in proc.stderr or "never follows" in proc.stderr


def oldest_backup(root: Path) -> str:
    """The id of the oldest backup."""
    return document(ok(schemalog(root, "backup", "list", "--json")))[0]["id"]


DRIVER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    import schemalog.engine.shell.backup as backup
    import schemalog.engine.shell.restore as restore
    fixed = datetime.fromisoformat(sys.argv[1])
    backup.utc_now = lambda: fixed       # backup names
    restore.now = lambda: sys.argv[2]    # pre-restore directory names
    from schemalog.engine.cli import main
    main(sys.argv[3:])
    """
)


def with_fixed_clock(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a real process whose backup and preservation names use FIXED."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    argv = [sys.executable, "-c", DRIVER, FIXED.isoformat(), iso(FIXED)]
    argv += ["--database", DB, "--migrations", "migrations", "--lock-timeout", "5", *args]
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT)


class TestPlantedLinks:
    def test_the_lock_file(self, project: Path, tmp_path: Path):
        """app.db.lock -> victim: every writing command is refused; the victim is unchanged."""
        victim = tmp_path / "victim.txt"
        link = project / (DB + ".lock")
        plant(link, victim)
        before = digest(victim)
        for command in (["up"], ["backup", "create"], ["recover"], ["lock", "break"]):
            refused(schemalog(project, *command), link)
        assert digest(victim) == before and link.is_symlink()

    def test_the_jsonl(self, project: Path, tmp_path: Path):
        """app.db.journal.jsonl -> victim: refused by writing and reading commands alike."""
        victim = tmp_path / "victim.txt"
        link = project / JSONL
        plant(link, victim)
        before = digest(victim)
        for command in (["up"], ["recover"], ["status"], ["verify"], ["backup", "create"]):
            refused(schemalog(project, *command), link)
        assert digest(victim) == before

    def test_a_dangling_jsonl_link_creates_nothing(self, project: Path, tmp_path: Path):
        """A missing JSONL replaced by a link to a path that does not exist: refused; nothing
        is created at the link's target."""
        target = tmp_path / "would-be-created.jsonl"
        link = project / JSONL
        plant(link, target)
        refused(schemalog(project, "recover"), link)
        assert not target.exists()

    def test_the_restore_temporary_file(self, project: Path, tmp_path: Path):
        """app.db.restore-tmp -> victim, for a database SQLite cannot read (a file-level
        restore): refused before anything is written; the victim and app.db are unchanged."""
        backup_id = oldest_backup(project)
        db = project / DB
        damaged = b"this is not a database" * 200
        db.write_bytes(damaged)
        victim = tmp_path / "victim.txt"
        link = project / (DB + ".restore-tmp")
        plant(link, victim)
        before = digest(victim)
        refused(schemalog(project, "backup", "restore", backup_id), link)
        assert digest(victim) == before
        assert not db.is_symlink() and db.read_bytes() == damaged

    @pytest.mark.parametrize("dangling", [True, False], ids=["dangling", "to-a-file"])
    def test_a_backup_temporary_file(self, project: Path, tmp_path: Path, dangling: bool):
        """The next backup's temporary name -> a victim (or a path that does not exist): the
        link is removed as an unfinished backup (never followed), the backup is written as a
        new 0600 file of its own; the victim is unchanged, the missing target never created."""
        target = tmp_path / ("would-be-created.sqlite" if dangling else "victim.txt")
        before = None if dangling else digest(target)
        name = f"v0003-{stamp(FIXED)}Z"
        link = project / BACKUPS / f"{name}.sqlite.tmp"
        plant(link, target)
        ok(with_fixed_clock(project, "backup", "create"))
        assert not link.is_symlink()
        assert (project / BACKUPS / f"{name}.sqlite").is_file()
        assert (not target.exists()) if dangling else digest(target) == before

    @pytest.mark.parametrize("empty", [True, False], ids=["empty", "with-files"])
    def test_the_preservation_directory(self, project: Path, tmp_path: Path, empty: bool):
        """pre-restore-<time>Z -> a victim directory: refused (empty victim) or passed by for a
        fresh directory (victim with files); the victim is unchanged either way."""
        victim = tmp_path / "victim-dir"
        if empty:
            (victim / "keep.txt").unlink()
        link = project / BACKUPS / f"pre-restore-{stamp(FIXED)}Z"
        plant(link, victim)
        before = digest(victim)
        proc = with_fixed_clock(project, "backup", "restore", oldest_backup(project))
        if empty:
            refused(proc, link)
        else:
            ok(proc)
            assert (project / BACKUPS / f"pre-restore-{stamp(FIXED)}Z-1" / DB).is_file()
        assert digest(victim) == before and link.is_symlink()

"""The keyed chain through real `python -m schemalog` processes: configuring the key, keying a
journal started without one, and each claim of docs/events.md ("The hash chain: what it
detects") — what no key detects, what a key adds, and what neither can detect."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import attrs
import pytest

from schemalog.journal.chain import find_break, key_id, seal
from schemalog.journal.codec import encode
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.table import _CREATE, TableStore
from tests.engine.conftest import assert_journals_identical, jsonl_events, table_events
from tests.engine.procs import DB, digests, document, make_project, ok, rows_digest, schemalog
from tests.engine.procs import seed_rows as seed
from tests.journal.test_keyed_chain import forge

JSONL = DB + ".journal.jsonl"
STEPS = 4


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A key file as the docs suggest: 32 random bytes in hex, a newline, mode 0600."""
    path = tmp_path / "secret" / "schemalog.key"
    path.parent.mkdir()
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


def key_of(path: Path) -> bytes:
    """The key schemalog reads from `path`."""
    return path.read_bytes().rstrip(b"\n")


def keyed(path: Path) -> tuple[str, str]:
    """The global option naming `path` as the journal key file."""
    return ("--journal-key-file", str(path))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with STEPS migrations and no database yet."""
    return make_project(tmp_path / "p", count=STEPS)


def migrate(root: Path, *opts: str) -> str:
    """`up --to 1`, 100 application rows, `up`: returns the rows' digest."""
    ok(schemalog(root, *opts, "up", "--to", "1"))
    digest = seed(root / DB, 100)
    ok(schemalog(root, *opts, "up"))
    return digest


def write_both(root: Path, events: list[Event]) -> None:
    """Replace both journals by `events`, as an attacker with write access to the files would
    (the table's append-only triggers dropped, then put back)."""
    (root / JSONL).write_bytes(b"".join((encode(e) + "\n").encode() for e in events))
    with closing(sqlite3.connect(root / DB, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER schemalog_journal_no_update")
        conn.execute("DROP TRIGGER schemalog_journal_no_delete")
        conn.execute("DELETE FROM schemalog_journal")
        TableStore(conn).append(events)
        conn.execute(_CREATE[1])
        conn.execute(_CREATE[2])


def append_forged(root: Path, draft: Draft) -> Event:
    """Append one forged line to the JSONL, its hash recomputed with plain SHA-256."""
    last = jsonl_events(root / DB)[-1]
    event = seal(draft, seq=last.seq + 1, prev=last.hash)
    with (root / JSONL).open("ab") as fh:
        fh.write((encode(event) + "\n").encode())
    return event


def oldest_backup(root: Path) -> str:
    """The id of the oldest backup the journal knows."""
    return next(e.data["id"] for e in table_events(root / DB) if e.kind is Kind.BACKUP_TAKEN)


class TestConfiguringTheKey:
    def test_a_new_database_is_keyed_from_seq_1(self, project: Path, key_file: Path):
        """`up` with a key on a new database: journal_keyed at seq 1, every event keyed."""
        rows = migrate(project, *keyed(key_file))
        events = assert_journals_identical_keyed(project, key_of(key_file))
        assert events[0].kind is Kind.JOURNAL_KEYED
        assert events[0].data == {
            "since_seq": 1,
            "plain_events": 0,
            "key_id": key_id(key_of(key_file)),
        }
        status = document(ok(schemalog(project, *keyed(key_file), "status", "--json")))
        assert (status["version"], status["needs_recovery"]) == (STEPS, False)
        assert rows_digest(project / DB) == rows

    def test_without_the_key_every_command_refuses_naming_seq_1(self, project, key_file):
        """A keyed journal read without a key: exit 4 naming seq 1 and the setting (`status`
        reports it as needing a human)."""
        migrate(project, *keyed(key_file))
        before = digests(project)
        for command in (["up"], ["history"], ["verify"], ["recover"], ["backup", "create"]):
            proc = ok(schemalog(project, *command), 4)
            assert "seq 1" in proc.stderr and "no journal key is configured" in proc.stderr
        status = document(ok(schemalog(project, "status", "--json")))
        (action,) = status["recovery_actions"]
        assert action.startswith("needs a human: the table journal cannot be checked from seq 1")
        assert "journal_key_file" in ok(schemalog(project, "up"), 4).stderr
        assert digests(project) == before

    def test_a_wrong_key_is_refused_naming_both_key_ids(self, project, key_file, tmp_path):
        """Another key: exit 4 at seq 1, naming the journal's key id and the configured one."""
        migrate(project, *keyed(key_file))
        other = tmp_path / "other.key"
        other.write_text(secrets.token_hex(32))
        proc = ok(schemalog(project, *keyed(other), "up"), 4)
        assert "seq 1" in proc.stderr
        assert key_id(key_of(key_file)) in proc.stderr and key_id(key_of(other)) in proc.stderr

    def test_the_environment_variable_sets_the_key(self, project, key_file):
        """SCHEMALOG_JOURNAL_KEY_FILE works as the flag does."""
        migrate(project, *keyed(key_file))
        env = {"SCHEMALOG_JOURNAL_KEY_FILE": str(key_file)}
        ok(schemalog(project, "status", "--json", env=env))

    @pytest.mark.parametrize("bad", ["missing", "short", "directory", "empty"])
    def test_an_unusable_key_file_is_a_configuration_error(self, project, tmp_path, bad):
        """A key file that is missing, a directory, empty or shorter than 16 bytes: exit 2,
        nothing created."""
        path = tmp_path / "k"
        if bad == "short":
            path.write_text("tooshort\n")
        elif bad == "empty":
            path.write_bytes(b"")
        elif bad == "directory":
            path.mkdir()
        proc = ok(schemalog(project, *keyed(path), "up"), 2)
        assert "journal key file" in proc.stderr and str(path) in proc.stderr
        assert not (project / DB).exists()


class TestKeyingAPlainJournal:
    def test_a_plain_journal_is_refused_until_recover_seals_it(self, project, key_file):
        """Key set for a journal started without one: `up` refuses (exit 4, naming recover),
        `recover` writes journal_keyed at the next seq, then everything works with the key."""
        rows = migrate(project)
        plain = table_events(project / DB)
        proc = ok(schemalog(project, *keyed(key_file), "up"), 4)
        assert f"{len(plain)} events were sealed without a key" in proc.stderr
        assert "schemalog recover" in proc.stderr
        status = document(ok(schemalog(project, *keyed(key_file), "status", "--json")))
        assert any("sealed without a key" in a for a in status["recovery_actions"])
        ok(schemalog(project, *keyed(key_file), "recover"))
        events = assert_journals_identical_keyed(project, key_of(key_file))
        marker = events[len(plain)]
        assert marker.kind is Kind.JOURNAL_KEYED and marker.seq == len(plain) + 1
        assert marker.data["plain_events"] == len(plain)
        assert events[: len(plain)] == plain
        ok(schemalog(project, *keyed(key_file), "up"))
        ok(schemalog(project, *keyed(key_file), "verify"))
        assert "no journal key is configured" in ok(schemalog(project, "up"), 4).stderr
        assert rows_digest(project / DB) == rows


class TestWhatNoKeyDetects:
    def test_an_edit_of_one_journal_is_detected(self, project):
        """An event of the JSONL edited, every later hash recomputed: exit 4, nothing changed."""
        migrate(project)
        events = list(jsonl_events(project / DB))
        forged = forge(events, 5, None, data={**events[5].data, "name": "forged"})
        (project / JSONL).write_bytes(b"".join((encode(e) + "\n").encode() for e in forged))
        before = digests(project)
        proc = ok(schemalog(project, "up"), 4)
        assert "differ at seq 6" in proc.stderr
        assert digests(project) == before

    def test_a_forged_line_that_is_no_plausible_tail_is_refused(self, project):
        """A forged `step_applied` appended to the JSONL with a plain hash: refused, exit 4."""
        migrate(project)
        forged = append_forged(project, Draft("eeeeeeeeeeee", Kind.STEP_APPLIED, 9, {"name": "x"}))
        proc = ok(schemalog(project, "recover"), 4)
        assert f"seq {forged.seq} (step_applied)" in proc.stderr

    def test_a_forged_restore_is_recorded_but_never_carried_out(self, project):
        """The issue's attack without a key: a forged `restore_started` of the oldest backup is
        a plausible tail, mirrored and closed as failed; the database is not restored."""
        rows = migrate(project)
        append_forged(
            project,
            Draft(
                "eeeeeeeeeeee",
                Kind.RESTORE_STARTED,
                0,
                {"backup_id": oldest_backup(project), "preserved": str(project), "reason": "x"},
            ),
        )
        ok(schemalog(project, "recover"))
        events = assert_journals_identical(project / DB)
        assert any(e.kind is Kind.RESTORE_FAILED for e in events)
        assert rows_digest(project / DB) == rows
        status = document(ok(schemalog(project, "status", "--json")))
        assert status["version"] == status["user_version"] == STEPS

    def test_a_consistent_rewrite_of_both_journals_is_not_detected(self, project):
        """The limit of the plain chain: both journals rewritten consistently pass every check."""
        migrate(project)
        events = list(table_events(project / DB))
        write_both(project, forge(events, 1, None, data={**events[1].data, "host": "forged"}))
        status = document(ok(schemalog(project, "status", "--json")))
        assert not status["needs_recovery"] and status["journal"]["consistent"]
        ok(schemalog(project, "verify"))


class TestWhatAKeyDetects:
    def test_a_forged_restore_line_with_a_plain_hash_is_refused(self, project, key_file):
        """The issue's attack with a key: the forged line fails the keyed chain; exit 4 naming
        its seq; nothing changed, nothing restored."""
        rows = migrate(project, *keyed(key_file))
        forged = append_forged(
            project,
            Draft("eeeeeeeeeeee", Kind.RESTORE_STARTED, 0, {"backup_id": oldest_backup(project)}),
        )
        before = digests(project)
        proc = ok(schemalog(project, *keyed(key_file), "recover"), 4)
        assert f"seq {forged.seq}" in proc.stderr and "keyed hash does not match" in proc.stderr
        assert digests(project) == before and rows_digest(project / DB) == rows

    @pytest.mark.parametrize("start", [0, 3, -2])
    def test_a_consistent_rewrite_of_both_journals_is_detected(self, project, key_file, start):
        """Both journals rewritten from one event on, hashes recomputed with plain SHA-256:
        exit 4 for the key holder, naming the first rewritten event."""
        migrate(project, *keyed(key_file))
        events = list(table_events(project / DB))
        start %= len(events)
        forged = forge(events, start, None, data={**events[start].data, "forged": True})
        write_both(project, forged)
        proc = ok(schemalog(project, *keyed(key_file), "up"), 4)
        assert f"seq {start + 1}" in proc.stderr
        ok(schemalog(project, *keyed(key_file), "verify"), 4)

    def test_removing_the_keyed_part_is_refused_as_not_keyed(self, project, key_file):
        """A journal rewritten plain, its journal_keyed event removed: refused as not keyed
        (the key holder knows it was keyed and does not run recover on it)."""
        migrate(project, *keyed(key_file))
        events = [e for e in table_events(project / DB) if e.kind is not Kind.JOURNAL_KEYED]
        renumbered = [attrs.evolve(e, seq=i) for i, e in enumerate(events, start=1)]
        write_both(project, forge(renumbered, 0, None))
        proc = ok(schemalog(project, *keyed(key_file), "up"), 4)
        assert "sealed without a key" in proc.stderr


class TestWhatNeitherDetects:
    def test_a_rollback_to_an_older_copy_of_both_files(self, project, key_file, tmp_path):
        """An older, consistent copy of the database and the JSONL put back: it checks under
        the key (every event in it is genuine)."""
        opts = keyed(key_file)
        ok(schemalog(project, *opts, "up", "--to", "2"))
        saved = tmp_path / "old"
        saved.mkdir()
        for name in (DB, JSONL):
            shutil.copy2(project / name, saved / name)
        ok(schemalog(project, *opts, "up"))
        for name in (DB, JSONL):
            shutil.copy2(saved / name, project / name)
        status = document(ok(schemalog(project, *opts, "status", "--json")))
        assert status["version"] == 2 and not status["needs_recovery"]

    def test_a_complete_deletion_of_both(self, project, key_file):
        """The database and its JSONL deleted: what remains is no database at all."""
        migrate(project, *keyed(key_file))
        (project / DB).unlink()
        (project / JSONL).unlink()
        status = document(ok(schemalog(project, *keyed(key_file), "status", "--json")))
        assert status["exists"] is False and status["needs_recovery"] is False


def assert_journals_identical_keyed(root: Path, key: bytes) -> tuple[Event, ...]:
    """Both journals hold the same chain, valid under `key`; return its events."""
    table, jsonl = table_events(root / DB), jsonl_events(root / DB)
    assert [e.hash for e in table] == [e.hash for e in jsonl]
    assert find_break(table, key=key) is None
    assert find_break(table) is not None or not any(e.kind is Kind.JOURNAL_KEYED for e in table)
    return table

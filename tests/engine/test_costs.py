"""Costs that must not grow (issue 13), as behaviour: commands start from the last
checkpoint, a repeated no-op `upgrade()` reads no event, runs no migration code and computes
no fingerprint, read-only commands run no migration code, `check` gives `up`'s verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemalog.engine.base.errors import RegistryError
from schemalog.engine.commands import check as check_module
from schemalog.engine.shell import recovery as recovery_module
from schemalog.journal import checkpoint as checkpoint_module
from schemalog.journal import table as table_module
from schemalog.journal.chain import seal
from schemalog.journal.errors import JournalLayoutError
from schemalog.journal.events import Draft, Kind
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import checkpoint_payload
from tests.engine.conftest import (
    assert_journals_identical,
    connect,
    make_migrator,
    of_kind,
)

MARKED = (
    "open({marker!r}, 'a').write('ran\\n')\n"
    'up = "CREATE TABLE marked (id INTEGER);"\n'
    'down = "DROP TABLE marked;"\n'
    "verify = [\"SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'marked'\"]\n"
)


def ran(marker: Path) -> int:
    """How many times the marked migration's top level ran."""
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.fixture
def marked(basic_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The BASIC migrations plus `004_marked.py`, whose top level appends to a marker file."""
    marker = tmp_path / "marker"
    (basic_dir / "004_marked.py").write_text(MARKED.format(marker=str(marker)))
    return basic_dir, marker


@pytest.fixture
def small_interval(monkeypatch: pytest.MonkeyPatch) -> int:
    """Checkpoints every 20 events (instead of hundreds), so a few runs write some."""
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 20)
    return 20


def cycles(migrator, n: int) -> None:
    """`n` down/up cycles of the newest migration."""
    head = migrator.status().head
    for _ in range(n):
        migrator.downgrade(head - 1)
        migrator.upgrade()


class TestCheckpointsInRuns:
    def test_runs_write_checkpoints_and_status_counts_every_event(
        self, tmp_path, basic_dir, small_interval
    ):
        """Runs past the interval end with a checkpoint; status still counts all events."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        cycles(migrator, 4)
        events = assert_journals_identical(tmp_path / "app.db")
        checkpoints = of_kind(events, "checkpoint")
        assert len(checkpoints) >= 2
        assert all(events[c.seq - 2].kind is Kind.LOCK_RELEASED for c in checkpoints)
        journal = migrator.status().journal
        assert journal == {
            "table_events": len(events),
            "jsonl_events": len(events),
            "consistent": True,
        }

    def test_verify_checks_every_checkpoint(self, tmp_path, basic_dir, small_interval):
        """verify replays from the first event and finds the checkpoints true."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        cycles(migrator, 3)
        checks = {c["check"]: c for c in migrator.verify()}
        assert checks["checkpoints"]["ok"]
        assert checks["journal_chain"]["ok"]

    def test_history_and_replay_until_still_show_everything(
        self, tmp_path, basic_dir, small_interval
    ):
        """history lists every attempt since the first; replay --until reaches before checkpoints."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        cycles(migrator, 3)
        assert len(migrator.history()) == 3 + 2 * 3
        assert migrator.replay(until=3).version == 0

    def test_recovery_from_a_checkpoint_closes_an_interrupted_run(
        self, tmp_path, basic_dir, small_interval
    ):
        """A run killed after the last checkpoint is closed by the next command."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        cycles(migrator, 3)
        db = tmp_path / "app.db"
        events = assert_journals_identical(db)
        assert events[-1].kind is Kind.CHECKPOINT or of_kind(events, "checkpoint")
        # A run that started and died: its events are in both journals, nothing else.
        conn = connect(db)
        jsonl = JsonlStore(tmp_path / "app.db.journal.jsonl")
        from schemalog.journal.journal import Journal

        journal = Journal(conn, jsonl)
        journal.continue_after(events)
        journal.append_many(
            [
                Draft("dead", Kind.RUN_STARTED, None, {"command": "up", "pid": 1}),
                Draft("dead", Kind.LOCK_ACQUIRED, None, {"pid": 1, "host": "h"}),
            ]
        )
        journal.close()
        conn.close()
        assert migrator.status().needs_recovery
        plan = migrator.recover()
        assert {a.kind for a in plan.actions} == {"close_run", "release_lock"}
        assert not migrator.status().needs_recovery
        assert_journals_identical(db)

    def test_a_forged_checkpoint_in_the_jsonl_alone_is_refused(
        self, tmp_path, basic_dir, small_interval
    ):
        """A checkpoint only the JSONL holds is checked against the events before it."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        db = tmp_path / "app.db"
        events = assert_journals_identical(db)
        payload = checkpoint_payload(events)
        assert payload is not None
        forged = seal(
            Draft("x", Kind.CHECKPOINT, None, {**payload, "version": 1}),
            seq=len(events) + 1,
            prev=events[-1].hash,
        )
        JsonlStore(tmp_path / "app.db.journal.jsonl").append([forged])
        with pytest.raises(Exception, match="checkpoint at seq") as info:
            migrator.upgrade()
        assert info.value.exit_code == 4

    def test_a_true_checkpoint_in_the_jsonl_alone_is_copied(self, tmp_path, basic_dir):
        """A checkpoint the table lost (crash between the two writes) is mirrored into it."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        db = tmp_path / "app.db"
        events = assert_journals_identical(db)
        cp = seal(
            Draft("x", Kind.CHECKPOINT, None, checkpoint_payload(events)),
            seq=len(events) + 1,
            prev=events[-1].hash,
        )
        JsonlStore(tmp_path / "app.db.journal.jsonl").append([cp])
        migrator.recover()
        after = assert_journals_identical(db)
        assert after[len(events)] == cp


class TestLayout:
    def test_a_layout_1_journal_is_upgraded_by_the_next_writer(self, tmp_path, basic_dir):
        """A journal written before checkpoints gets layout 2 (the index) from `up`."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade(1)
        with connect(tmp_path / "app.db") as conn:
            conn.execute("DROP INDEX schemalog_journal_checkpoints")
            conn.execute("UPDATE schemalog_meta SET value = '1' WHERE key = 'journal_layout'")
        assert migrator.status().version == 1  # a reader reads it as it is
        migrator.upgrade()
        conn = connect(tmp_path / "app.db")
        assert table_module.TableStore(conn).layout() == 2
        conn.close()

    def test_a_newer_layout_is_refused(self, tmp_path, basic_dir):
        """A journal of a newer layout than this code knows is refused, reading or writing."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade(1)
        with connect(tmp_path / "app.db") as conn:
            conn.execute("UPDATE schemalog_meta SET value = '3' WHERE key = 'journal_layout'")
        for call in (migrator.status, migrator.upgrade):
            with pytest.raises(JournalLayoutError):
                call()


class TestWarmNoOp:
    def test_a_repeated_noop_reads_nothing_runs_nothing_fingerprints_nothing(
        self, tmp_path, marked, monkeypatch
    ):
        """The second no-op upgrade() of one Migrator reads no event, runs no migration code
        and computes no schema fingerprint."""
        directory, marker = marked
        migrator = make_migrator(tmp_path, directory)
        migrator.upgrade()
        assert ran(marker) == 1
        migrator.upgrade()  # the first no-op fills the memo

        def refuse(*_args, **_kwargs):
            raise AssertionError("not on the warm no-op path")

        monkeypatch.setattr(table_module.TableStore, "read_from", refuse)
        monkeypatch.setattr(table_module.TableStore, "read", refuse)
        monkeypatch.setattr(JsonlStore, "read", refuse)
        monkeypatch.setattr(JsonlStore, "read_from", refuse)
        monkeypatch.setattr(recovery_module, "schema_fingerprint", refuse)
        report = migrator.upgrade()
        assert report.plan.empty
        assert ran(marker) == 1

    def test_a_change_by_another_process_is_seen(self, tmp_path, basic_dir):
        """After another Migrator ran, the first one's memo is not trusted: it sees the change."""
        first = make_migrator(tmp_path, basic_dir)
        first.upgrade(2)
        assert first.upgrade(2).plan.empty
        make_migrator(tmp_path, basic_dir).upgrade()
        assert first.status().version == 3
        assert first.downgrade(2).plan.steps[0].version == 3


class TestReadOnlyRunsNoCode:
    def test_no_readonly_command_runs_migration_code(self, tmp_path, marked):
        """status, history, verify, replay, events, backup list and lock status run no `.py`."""
        directory, marker = marked
        migrator = make_migrator(tmp_path, directory)
        migrator.upgrade()
        marker.unlink()
        migrator.status()
        migrator.history()
        checks = {c["check"]: c for c in migrator.verify()}
        migrator.replay()
        migrator.events()
        migrator.backup_list()
        migrator.lock_status()
        assert ran(marker) == 0
        assert checks["verify 004_marked.py #1"]["ok"]

    def test_a_computed_verify_is_skipped_with_a_note(self, tmp_path, basic_dir):
        """verify does not run a `.py` file to learn a computed `verify`; it says so."""
        (basic_dir / "004_computed.py").write_text(
            'up = "CREATE TABLE c (id INTEGER);"\nQ = "SELECT 1"\nverify = [Q]\n'
        )
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        checks = {c["check"]: c for c in migrator.verify()}
        assert checks["verify 004_computed.py"]["ok"]
        assert "not a literal" in checks["verify 004_computed.py"]["detail"]

    def test_the_cli_status_runs_no_code(self, tmp_path, marked):
        """`schemalog status --json` (a real process) runs no migration code, even pending."""
        directory, marker = marked
        make_migrator(tmp_path, directory).upgrade(3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        result = subprocess.run(
            [
                *(sys.executable, "-m", "schemalog", "--database", str(tmp_path / "app.db")),
                *("--migrations", str(directory), "status", "--json"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["pending"] == [4]
        assert ran(marker) == 0

    def test_status_reports_a_pending_syntax_error_without_running_it(self, tmp_path, basic_dir):
        """A pending `.py` file that does not compile is named by status, nothing run."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        (basic_dir / "004_broken.py").write_text("up = (\n")
        assert "004_broken.py: syntax error" in migrator.status().registry_error


class TestCheckAgreesWithUp:
    def test_an_edited_applied_file_is_refused_by_both(self, tmp_path, basic_dir):
        """With nothing pending, an edited applied file fails `check` as it fails `up`."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        path = basic_dir / "002_create_tags.sql"
        path.write_text(path.read_text() + "\n-- edited\n")
        with pytest.raises(RegistryError) as up_error:
            migrator.upgrade()
        with pytest.raises(RegistryError) as check_error:
            check_module.check_copy(migrator.settings)
        assert up_error.value.what == check_error.value.what
        assert "002_create_tags.sql was changed after it was applied at 20" in up_error.value.what

    def test_a_deleted_applied_file_is_named_with_its_time(self, tmp_path, basic_dir):
        """A deleted applied migration is named by its file name and when it was applied."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        (basic_dir / "003_add_item_note.sql").unlink()
        with pytest.raises(RegistryError, match=r"003_add_item_note was applied at 20") as info:
            migrator.upgrade()
        assert "(003_add_item_note.sql)" in info.value.what

    def test_check_loads_each_file_once(self, tmp_path, basic_dir, monkeypatch):
        """check --all loads the registry and each file's code once, whatever the count."""
        loads = []
        real = check_module.load_registry
        monkeypatch.setattr(check_module, "load_registry", lambda d: loads.append(d) or real(d))
        import schemalog.engine.commands.migrate as migrate_module

        monkeypatch.setattr(migrate_module, "load_registry", lambda d: pytest.fail("reloaded"))
        reports = check_module.check(make_migrator(tmp_path, basic_dir).settings, from_scratch=True)
        assert all(r.ok for r in reports)
        assert len(loads) == 1


class TestBackupBudget:
    def test_preservations_are_pruned_under_the_size_budget(self, tmp_path, basic_dir):
        """Old pre-restore directories go under `retention_bytes`; the newest stays; each
        removal is journaled before the files go."""
        migrator = make_migrator(tmp_path, basic_dir)
        migrator.upgrade()
        for _ in range(2):
            newest = migrator.backup_list()[-1]
            migrator.backup_restore(newest.id)
            migrator.upgrade()
        backup_dir = migrator.paths.backup_dir
        preserved = sorted(p.name for p in backup_dir.glob("pre-restore-*"))
        assert len(preserved) == 2
        size = migrator.paths.database.stat().st_size
        tight = make_migrator(tmp_path, basic_dir, retention_bytes=3 * size)
        tight.downgrade(2)
        left = sorted(p.name for p in backup_dir.glob("pre-restore-*"))
        assert left == preserved[1:]
        removed = [
            e
            for e in assert_journals_identical(tmp_path / "app.db")
            if e.kind is Kind.BACKUP_REMOVED and e.data.get("preservation")
        ]
        assert [e.data["id"] for e in removed] == preserved[:1]
        total = sum(f.stat().st_size for f in backup_dir.rglob("*") if f.is_file())
        assert total <= 3 * size or len(list(backup_dir.glob("*.sqlite"))) == 1

    def test_a_restore_keeps_the_directory_within_the_budget(self, tmp_path, basic_dir):
        """After a restore the budget holds too; the backup it restored and its preservation stay."""
        size_probe = make_migrator(tmp_path, basic_dir)
        size_probe.upgrade()
        for _ in range(3):
            size_probe.downgrade(2)
            size_probe.upgrade()
        size = size_probe.paths.database.stat().st_size
        tight = make_migrator(tmp_path, basic_dir, retention_bytes=3 * size, retention_count=None)
        target = tight.backup_list()[-2]
        result = tight.backup_restore(target.id)
        backup_dir = tight.paths.backup_dir
        total = sum(f.stat().st_size for f in backup_dir.rglob("*") if f.is_file())
        assert total <= 3 * size
        assert (backup_dir / f"{target.id}.sqlite").exists()
        assert result.preserved.exists()

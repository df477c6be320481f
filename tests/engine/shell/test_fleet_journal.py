"""The fleet journal: the database journals' envelope and chain, one writer at a time,
a torn last line saved aside, a broken chain refused."""

from __future__ import annotations

import pytest

from schemalog.engine.base.errors import LockHeld
from schemalog.engine.shell.fleet_journal import (
    FleetJournal,
    fleet_journal_live,
    read_fleet_journal,
)
from schemalog.journal.chain import find_break
from schemalog.journal.errors import JournalChainBroken
from schemalog.journal.events import Kind


def write_run(path, fleet_id, *, finish=True):
    with FleetJournal(path, fleet_id=fleet_id) as fj:
        fj.record(Kind.FLEET_STARTED, None, databases=["a.db"])
        fj.record(Kind.DATABASE_STARTED, None, database="a.db")
        if finish:
            fj.record(Kind.DATABASE_FINISHED, 2, database="a.db", outcome="applied")
            fj.record(Kind.FLEET_FINISHED, None, outcome="completed")


class TestFleetJournal:
    def test_runs_append_to_one_chain(self, tmp_path):
        """Two runs' events form one gap-free hash chain, each event tagged with its run."""
        path = tmp_path / "fleet.jsonl"
        write_run(path, "f1")
        write_run(path, "f2")
        events = read_fleet_journal(path)
        assert [e.seq for e in events] == list(range(1, 9))
        assert find_break(events) is None
        assert {e.run_id for e in events} == {"f1", "f2"}
        assert oct(path.stat().st_mode & 0o777) == "0o600"

    def test_previous_run_unfinished(self, tmp_path):
        """A run that wrote no fleet_finished is seen as unfinished by the next one."""
        path = tmp_path / "fleet.jsonl"
        write_run(path, "f1", finish=False)
        with FleetJournal(path, fleet_id="f2") as fj:
            assert fj.previous.run_id == "f1"
            assert not fj.previous_finished()
        write_run(path, "f3")
        with FleetJournal(path, fleet_id="f4") as fj:
            assert fj.previous_finished()

    def test_one_fleet_run_at_a_time(self, tmp_path):
        """A second writer is refused (exit 3) while the first holds the journal."""
        path = tmp_path / "fleet.jsonl"
        with FleetJournal(path, fleet_id="f1"):
            assert fleet_journal_live(path)
            with pytest.raises(LockHeld, match="another fleet run") as info:
                FleetJournal(path, fleet_id="f2").open()
            assert info.value.exit_code == 3
        assert not fleet_journal_live(path)

    def test_a_torn_tail_is_saved_and_cut(self, tmp_path):
        """Half a line left by a kill is saved next to the journal and cut before appending."""
        path = tmp_path / "fleet.jsonl"
        write_run(path, "f1")
        with open(path, "ab") as fh:
            fh.write(b'{"seq":5,"half')
        assert len(read_fleet_journal(path)) == 4  # readers skip it
        with FleetJournal(path, fleet_id="f2") as fj:
            assert fj.saved_torn is not None
            assert fj.saved_torn.read_bytes() == b'{"seq":5,"half'
            fj.record(Kind.FLEET_STARTED, None, databases=[])
        assert find_break(read_fleet_journal(path)) is None

    def test_a_changed_event_is_refused(self, tmp_path):
        """Editing a past event breaks the chain: readers and writers refuse (exit 4)."""
        path = tmp_path / "fleet.jsonl"
        write_run(path, "f1")
        path.write_text(path.read_text().replace('"applied"', '"failed"'))
        with pytest.raises(JournalChainBroken) as info:
            read_fleet_journal(path)
        assert info.value.exit_code == 4
        with pytest.raises(JournalChainBroken):
            FleetJournal(path, fleet_id="f2").__enter__()

    def test_missing_journal_reads_empty(self, tmp_path):
        """No journal yet means no run."""
        assert read_fleet_journal(tmp_path / "none.jsonl") == ()

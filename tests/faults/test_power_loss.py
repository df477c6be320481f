"""Part 3, power loss: the files a crash at any instant of a run can leave (tests/faults/
powerloss.py has the model), then `status --json`, `recover` and `up` must recover."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import campaign, powerloss
from tests.faults.results import failures
from tests.faults.world import Template

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def recordings(template: Template, tmp_path_factory: pytest.TempPathFactory) -> campaign.Recordings:
    """The traced runs the crash states come from."""
    if not powerloss.strace_available():
        pytest.skip("strace is not installed: the runs cannot be recorded")
    return campaign.Recordings(template, tmp_path_factory.mktemp("faults-recordings"))


class TestModel:
    """The model replays a run faithfully before it is trusted to cut it short."""

    def test_keeping_everything_gives_the_files_of_the_run(
        self, recordings: campaign.Recordings, tmp_path: Path
    ) -> None:
        """With nothing lost at the end of the run, the materialised files are the real ones."""
        recording = recordings.get("up")
        real = recordings.work / "record-up"
        powerloss.materialise(
            recording, powerloss.State(len(recording.ops), "kept", "ordered"), tmp_path / "end"
        )

        def files(root: Path) -> dict[str, bytes]:
            return {
                str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
            }

        assert files(tmp_path / "end") == files(real)

    def test_crash_before_the_run_gives_the_files_before_it(
        self, recordings: campaign.Recordings, template: Template, tmp_path: Path
    ) -> None:
        """A crash at point 0 leaves exactly the world the run started from."""
        recording = recordings.get("up")
        powerloss.materialise(recording, powerloss.State(0, "lost", "posix"), tmp_path / "s")
        before = {
            str(p.relative_to(template.at_one)): p.read_bytes()
            for p in template.at_one.rglob("*")
            if p.is_file()
        }
        after = {
            str(p.relative_to(tmp_path / "s")): p.read_bytes()
            for p in (tmp_path / "s").rglob("*")
            if p.is_file()
        }
        assert after == before


class TestPowerLoss:
    """Invariant 8 (and 3) against power loss with unsynced writes lost, kept or garbled."""

    @pytest.mark.parametrize("op_name", campaign.POWER_OPERATIONS)
    def test_next_commands_recover(
        self, op_name: str, recordings: campaign.Recordings, tmp_path: Path
    ) -> None:
        """After a crash at any recorded instant, the next commands recover by themselves."""
        states = campaign.power_states(recordings, op_name)
        if not states:
            pytest.skip(f"{op_name}: power-loss states run in the full campaign only")
        records = campaign.parallel(
            lambda s: campaign.run_power_case(recordings, tmp_path, *s), states
        )
        assert failures(records) == ""

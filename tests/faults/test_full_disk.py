"""Part 2, a full disk: `up` on a real small filesystem (tmpfs, 4 MiB) that has K bytes
free, for K from 0 to more than the run needs; then the space is freed and the next
commands must recover."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults import campaign, fullfs
from tests.faults.results import failures
from tests.faults.world import Template

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless a tmpfs can be mounted here (root, mount permitted)."""
    if os.geteuid() != 0:
        pytest.skip("full-disk tests need root to mount a tmpfs")
    try:
        with fullfs.mounted(tmp_path_factory.mktemp("faults-probe") / "fs"):
            pass
    except fullfs.MountFailed as exc:
        pytest.skip(f"full-disk tests skipped: {exc}")


class TestFullDisk:
    """Invariant 8 against a full disk at every free-space level."""

    def test_next_commands_recover(
        self, can_mount: None, template: Template, tmp_path: Path
    ) -> None:
        """After `up` on a full filesystem, freeing the space lets the next commands recover."""
        levels = campaign.disk_levels()
        records = campaign.parallel(
            lambda free: campaign.run_disk_case(template, tmp_path, free), levels
        )
        assert failures(records) == ""
        if campaign.full():
            top = records[-1]
            assert top.verdict.outcome == "ok", "the top level must leave room for the whole run"

"""Part 1, syscall faults: the N-th call of a syscall fails with EIO or ENOSPC, for every N
the operation reaches (SQLite's I/O error loop), then the next commands must recover.

For each class (write, fsync, rename, unlink, ftruncate, copy_file_range, openat), each
operation (`up`, `down --to 0`, `backup create`, `backup restore ID`) and each errno, N runs
over the calls counted in an un-injected traced run, until an N where no fault fires.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import campaign, inject
from tests.faults.results import failures
from tests.faults.world import OPERATIONS, Template

pytestmark = pytest.mark.faults


class TestSyscallFaults:
    """Invariant 8 against an I/O error at any system call."""

    @pytest.mark.parametrize("fault_class", list(inject.CLASSES))
    def test_next_command_recovers(
        self, fault_class: str, template: Template, counts: campaign.Counts, tmp_path: Path
    ) -> None:
        """After the N-th call of the class fails, the next commands recover by themselves."""
        cases = campaign.syscall_cases(counts, fault_class)
        records = campaign.parallel(
            lambda case: campaign.run_syscall_case(template, tmp_path, *case), cases
        )
        assert failures(records) == ""

    @pytest.mark.skipif(not campaign.full(), reason="the loop's end is checked in the full run")
    @pytest.mark.parametrize("fault_class", list(inject.CLASSES))
    def test_the_loop_ends(self, fault_class: str, counts: campaign.Counts, tmp_path: Path) -> None:
        """One N past the counted calls, no fault fires: every N in between was tried."""
        for op in OPERATIONS:
            for syscall in inject.CLASSES[fault_class]:
                errno = inject.errors_for(fault_class)[0]
                assert campaign.loop_ends(counts, op, syscall, errno, tmp_path), (
                    f"{op.name}: {syscall} #{counts.points(op, syscall)[-1] + 1} still fires"
                )

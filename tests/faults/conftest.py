"""Fixtures of the fault campaign: the template worlds (built once per session with real
schemalog runs), the un-injected call counts, and a work directory per test.

Every test module here sets `pytestmark = pytest.mark.faults`; `SCHEMALOG_FAULTS=full` runs the whole campaign
(`make faults`), otherwise a bounded sample runs (part of `make test`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults import inject
from tests.faults.campaign import Counts
from tests.faults.world import Template, build_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The worlds every case starts from (version 1 and the head, seeded rows, backups)."""
    return build_template(tmp_path_factory.mktemp("faults-template"))


@pytest.fixture(scope="session")
def counts(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Counts:
    """The calls each operation makes when nothing is faulted (strace needed)."""
    if not Path(inject.STRACE).exists() or shutil.which(inject.STRACE) is None:
        pytest.skip(f"strace is not installed ({inject.STRACE}): syscall faults not injected")
    return Counts(template, tmp_path_factory.mktemp("faults-counts"))

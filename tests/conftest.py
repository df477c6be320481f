"""Suite-wide settings: Hypothesis without deadlines (the machine is shared and noisy;
speed is checked by `make bench`, never by timed assertions); the `schemalog` logger given
back to library mode after every test (a CLI invoked in-process takes it over)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from schemalog.engine.base.logs import reset_logging

settings.register_profile(
    "schemalog",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("schemalog")


@pytest.fixture(autouse=True)
def _library_logging():
    """Each test leaves the `schemalog` logger as a library leaves it."""
    yield
    reset_logging()


def run_python(
    cwd: Path, *args: str, pythonpath: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python ARGS` in `cwd`, without SCHEMALOG_* variables (and with `pythonpath` first on
    the module path when given); output captured, bounded in time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

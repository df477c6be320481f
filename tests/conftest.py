"""Suite-wide settings: Hypothesis without deadlines (the machine is shared and noisy;
speed is checked by `make bench`, never by timed assertions); the `schemalog` logger given
back to library mode after every test (a CLI invoked in-process takes it over)."""

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

"""Suite-wide settings: Hypothesis without deadlines (the machine is shared and noisy;
speed is checked by `make bench`, never by timed assertions)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "schemalog",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("schemalog")

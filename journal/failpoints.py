"""Named crash points for fault-injection tests.

A failpoint fires only when the environment variable `SCHEMALOG_FAILPOINT`
names it (`name`, or `name@N` to fire on its N-th hit). Firing kills the
process with SIGKILL: no cleanup, no finally blocks, no flushed buffers — the
same as a power cut from the process's point of view. Never set in production.
"""

from __future__ import annotations

import os
import signal

__all__ = ["NAMES", "armed", "crash", "hit"]

ENV = "SCHEMALOG_FAILPOINT"

#: Every failpoint the code defines (tests iterate over these).
NAMES = (
    "after_lock",
    "after_run_started",
    "after_step_started",
    "before_commit",
    "after_commit",
    "mid_backup",
    "mid_restore",
    "mid_append",
)

_hits: dict[str, int] = {}


def armed(name: str) -> bool:
    """Whether the failpoint `name` should fire now (counts the hit)."""
    spec = os.environ.get(ENV)
    if not spec:
        return False
    target, _, nth = spec.partition("@")
    if target != name:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == (int(nth) if nth else 1)


def crash() -> None:
    """Die at once with SIGKILL."""
    os.kill(os.getpid(), signal.SIGKILL)


def hit(name: str) -> None:
    """Crash here if the failpoint `name` is armed."""
    if armed(name):
        crash()

"""Tests for journal.failpoints: named crash points armed through the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from schemalog.journal import failpoints

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    """Each test starts with no failpoint hits counted and none armed."""
    monkeypatch.setattr(failpoints, "_hits", {})
    monkeypatch.delenv(failpoints.ENV, raising=False)


@pytest.fixture
def crashes(monkeypatch):
    """Replace the real crash by a recorder, so a fired failpoint can be observed in-process."""
    fired: list[bool] = []
    monkeypatch.setattr(failpoints, "crash", lambda: fired.append(True))
    return fired


class TestArmed:
    def test_nothing_armed_without_the_variable(self):
        """With SCHEMALOG_FAILPOINT unset no failpoint fires."""
        assert not any(failpoints.armed(name) for name in failpoints.NAMES)

    def test_only_the_named_failpoint_fires(self, monkeypatch):
        """A failpoint fires only when the variable names it."""
        monkeypatch.setenv(failpoints.ENV, "after_commit")
        assert not failpoints.armed("before_commit")
        assert failpoints.armed("after_commit")

    def test_plain_name_fires_on_the_first_hit_only(self, monkeypatch):
        """`name` fires on its first hit and not again."""
        monkeypatch.setenv(failpoints.ENV, "mid_backup")
        assert [failpoints.armed("mid_backup") for _ in range(3)] == [True, False, False]

    def test_nth_hit(self, monkeypatch):
        """`name@3` fires on the third hit and no other."""
        monkeypatch.setenv(failpoints.ENV, "mid_append@3")
        assert [failpoints.armed("mid_append") for _ in range(5)] == [
            False,
            False,
            True,
            False,
            False,
        ]

    def test_names_are_unique(self):
        """Every declared failpoint has a distinct name."""
        assert len(set(failpoints.NAMES)) == len(failpoints.NAMES)


class TestHit:
    def test_hit_crashes_when_armed(self, monkeypatch, crashes):
        """hit() calls crash() when its failpoint is armed."""
        monkeypatch.setenv(failpoints.ENV, "after_lock")
        failpoints.hit("after_lock")
        assert crashes == [True]

    def test_hit_does_nothing_when_not_armed(self, monkeypatch, crashes):
        """hit() of another failpoint, or with nothing armed, returns normally."""
        failpoints.hit("after_lock")
        monkeypatch.setenv(failpoints.ENV, "after_lock")
        failpoints.hit("mid_restore")
        assert crashes == []


class TestCrash:
    def test_crash_is_sigkill(self):
        """A process reaching an armed failpoint dies by SIGKILL, running no finally block."""
        script = (
            "from journal import failpoints\n"
            "try:\n"
            "    failpoints.hit('after_run_started')\n"
            "finally:\n"
            "    print('cleanup ran', flush=True)\n"
        )
        env = {
            **os.environ,
            failpoints.ENV: "after_run_started",
            "PYTHONPATH": str(REPO),
        }
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, timeout=60, cwd=REPO
        )
        assert proc.returncode == -signal.SIGKILL
        assert b"cleanup ran" not in proc.stdout

"""Fixtures of the live tests: a workspace per journal mode, application writers that are
always killed at the end, and a record of what each scenario saw.

Every test here is marked `live`. `make live` (`SCHEMALOG_LIVE=1`) runs them all, in both
journal modes. Without it (`make test`) a bounded subset runs: the WAL half of every
scenario not marked `live_full` (under a minute). The WAL half, because in rollback-journal
mode a writer at 100 tx/s keeps the disk busy and every other connection (any reader too)
waits seconds for SQLite's locks, which makes those runs long and their length erratic.
With `SCHEMALOG_LIVE_RESULTS=FILE`, each scenario's record (exit codes, stderr, timings,
rows lost, problems) is appended to FILE as one JSON line, for the report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.harness import AppWriter, Workspace, calibrate_rows_per_second

FULL = os.environ.get("SCHEMALOG_LIVE") == "1"
_RECORDS: dict[str, dict[str, Any]] = {}
SLOW_STATEMENT_S = 5.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: runs schemalog beside a real application process")
    config.addinivalue_line(
        "markers", "live_full: a live test run only with SCHEMALOG_LIVE=1 (make live)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    full_only = pytest.mark.skip(reason="live_full: run with SCHEMALOG_LIVE=1 (make live)")
    other_half = pytest.mark.skip(
        reason="rollback-journal half of a live scenario: SCHEMALOG_LIVE=1 (make live)"
    )
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.live)
        if FULL:
            continue
        if item.get_closest_marker("live_full"):
            item.add_marker(full_only)
        elif getattr(item, "callspec", None) and item.callspec.params.get("mode") == "rollback":
            item.add_marker(other_half)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    record = _RECORDS.get(item.nodeid)
    if record is not None and report.when == "call":
        record["outcome"] = report.outcome
        if report.failed:
            record["failure"] = str(report.longrepr.reprcrash.message)[:1500]  # type: ignore[union-attr]
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("SCHEMALOG_LIVE_RESULTS")
    if not target or not _RECORDS:
        return
    with open(target, "a", encoding="utf-8") as f:
        for nodeid, record in _RECORDS.items():
            f.write(json.dumps({"test": nodeid, **record}, default=str) + "\n")


@pytest.fixture(params=["rollback", "wal"])
def mode(request: pytest.FixtureRequest) -> str:
    """The database's journal mode: rollback journal (DELETE) or WAL."""
    return request.param


@pytest.fixture
def ws(tmp_path: Path, mode: str) -> Iterator[Workspace]:
    """An empty workspace in `mode` (no database yet); its background commands are killed
    at the end of the test."""
    workspace = Workspace(tmp_path / "ws", mode)
    yield workspace
    workspace.kill_all()


@pytest.fixture
def writers(ws: Workspace) -> Iterator[Callable[..., AppWriter]]:
    """Start application writers on `ws`; each is killed at the end of the test, whatever happens."""
    started: list[AppWriter] = []

    def start(**options: Any) -> AppWriter:
        writer = AppWriter(ws, name=f"app{len(started)}", **options)
        started.append(writer)
        return writer.start()

    yield start
    for writer in started:
        writer.kill()


@pytest.fixture
def record(request: pytest.FixtureRequest, ws: Workspace) -> Iterator[dict[str, Any]]:
    """A dict the test fills with what it saw; the commands it ran are added at the end."""
    data: dict[str, Any] = {"mode": ws.mode}
    _RECORDS[request.node.nodeid] = data
    t0 = time.perf_counter()
    yield data
    data["test_s"] = round(time.perf_counter() - t0, 2)
    data["commands"] = [c.brief() for c in ws.commands]


@pytest.fixture(scope="session")
def slow_rows() -> int:
    """How many rows the slow step's CTE counts to take about SLOW_STATEMENT_S seconds here."""
    return int(calibrate_rows_per_second() * SLOW_STATEMENT_S)

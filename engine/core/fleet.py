"""Fleets, the pure part: per-database results, outcomes, and when a database may start.

A fleet run migrates many databases, each through the same library call as `up`. This
module decides nothing about files or processes: it names what happened to a database
(`DatabaseResult`), sorts an error into an outcome (`outcome_of`), and says whether the next
database in sorted order may start given what has finished (`next_verdict`): the canary
(`--canary K`) and the failure budget (`--max-failures F`) live here and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import attrs

from schemalog.engine.base.errors import DriftDetected, SchemalogError

__all__ = [
    "OUTCOMES",
    "DatabaseResult",
    "DatabaseStatus",
    "Outcome",
    "Policy",
    "Verdict",
    "exit_code_of",
    "fleet_exit_code",
    "next_verdict",
    "outcome_of",
    "stop_reason",
    "summarize",
    "version_histogram",
]

Outcome = Literal["applied", "up_to_date", "failed", "refused", "skipped"]
#: Every outcome of a database in a fleet run, in the order summaries list them.
OUTCOMES: tuple[Outcome, ...] = ("applied", "up_to_date", "failed", "refused", "skipped")
#: Outcomes that make `fleet up` exit 1.
_NOT_OK = frozenset({"failed", "refused"})


@attrs.frozen
class DatabaseResult:
    """What a fleet run did to one database (one row of `fleet up --json`).

    `from_version`/`to_version` are the versions before and after (null when the database
    could not be read); `error` is the one-line message `schemalog up` would have printed;
    `exit_code` is the code `schemalog up` on this database alone would have exited with;
    `run_id` names the run in the database's own journal (see `schemalog history`);
    `worker` says where it ran (host and process, or Dask worker).
    """

    database: str
    outcome: Outcome
    from_version: int | None = None
    to_version: int | None = None
    error: str | None = None
    exit_code: int = 0
    run_id: str | None = None
    worker: str | None = None
    seconds: float = 0.0


@attrs.frozen
class DatabaseStatus:
    """One database as `fleet status` reports it (read-only)."""

    database: str
    version: int | None
    head: int
    pending: list[int]
    needs_recovery: bool
    error: str | None = None


@attrs.frozen
class Policy:
    """How far a bad migration may spread: the canary and the failure budget.

    `canary` K: the first K databases in sorted order run first; if one of them fails,
    no other starts. `max_failures` F: no database starts once F have failed. None: no
    canary, no budget. Only `failed` counts: a `refused` database (bad input, locked,
    needing a human) says nothing about the migrations and was not changed.
    """

    canary: int | None = None
    max_failures: int | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("canary", "max_failures"):
            value = getattr(self, name)
            if value is not None and value < 1:
                msg = f"{name} must be >= 1 (or None), not {value!r}"
                raise ValueError(msg)


class Verdict(enum.StrEnum):
    """What the scheduler may do with the next database in sorted order."""

    START = "start"  # start it now
    WAIT = "wait"  # wait for a running database to finish, then ask again
    STOP = "stop"  # start no other database (see the reason)


def outcome_of(error: BaseException) -> Outcome:
    """`refused` or `failed` for a database whose `upgrade` raised `error`. Pure.

    Refused: schemalog would not start on this database and changed nothing in it because
    of its state or its input — a usage, configuration or migration-file error (exit 2;
    e.g. a database at a newer version than the files), the lock held by another run
    (exit 3), the journal or database needing a human (exit 4), or drift. Failed: a run
    started and failed — a migration or its verification failed and was rolled back, a
    backup could not be taken, a restore failed, a worker died, any unexpected error.
    """
    if isinstance(error, DriftDetected):
        return "refused"
    if isinstance(error, SchemalogError) and error.exit_code in (2, 3, 4):
        return "refused"
    return "failed"


def exit_code_of(error: BaseException) -> int:
    """The exit code `schemalog up` gives for `error` (1 for an unexpected one). Pure."""
    return error.exit_code if isinstance(error, SchemalogError) else 1


def stop_reason(
    policy: Policy, databases: Sequence[str], finished: Mapping[str, DatabaseResult]
) -> str | None:
    """Why no further database may start, or None. Pure.

    `databases` is the fleet in sorted order; `finished` maps each finished database to
    its result.
    """
    if policy.canary is not None:
        for database in databases[: policy.canary]:
            result = finished.get(database)
            if result is not None and result.outcome == "failed":
                return f"canary {database} failed"
    if policy.max_failures is not None:
        failed = sum(1 for r in finished.values() if r.outcome == "failed")
        if failed >= policy.max_failures:
            return f"the failure budget is spent: {failed} failed (--max-failures {policy.max_failures})"
    return None


def next_verdict(
    index: int,
    policy: Policy,
    databases: Sequence[str],
    finished: Mapping[str, DatabaseResult],
) -> tuple[Verdict, str | None]:
    """Whether `databases[index]` (sorted order) may start now, and the reason to stop. Pure.

    Every database before `index` has been started. STOP once a canary failed or the
    failure budget is spent; WAIT while `index` is past the canary and a canary is still
    running; START otherwise.
    """
    reason = stop_reason(policy, databases, finished)
    if reason is not None:
        return Verdict.STOP, reason
    canary = databases[: policy.canary] if policy.canary is not None else ()
    if index >= len(canary) and any(d not in finished for d in canary):
        return Verdict.WAIT, None
    return Verdict.START, None


def summarize(results: Iterable[DatabaseResult]) -> dict[str, int]:
    """How many databases had each outcome; every outcome is a key. Pure."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts


def fleet_exit_code(results: Iterable[DatabaseResult]) -> int:
    """0 when no database failed or was refused, 1 otherwise. Pure."""
    return 1 if any(r.outcome in _NOT_OK for r in results) else 0


def version_histogram(statuses: Iterable[DatabaseStatus]) -> dict[str, int]:
    """How many databases are at each version (known versions only), lowest first. Pure."""
    counts: dict[int, int] = {}
    for status in statuses:
        if status.version is not None:
            counts[status.version] = counts.get(status.version, 0) + 1
    return {str(version): counts[version] for version in sorted(counts)}

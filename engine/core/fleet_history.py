"""The fleet journal, folded into fleet runs: what every `fleet up` did, database by database.

Pure: `fleet_runs(events, live=...)` reads the events of a fleet journal (kinds
`fleet_started`, `database_started`, `database_finished`, `fleet_finished`) and returns one
`FleetRun` per `fleet_started`, oldest first. A run with no `fleet_finished` was interrupted
(kill -9, power loss), or is still running when `live` says its process holds the journal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from schemalog.journal.events import Event, Kind

__all__ = ["HISTORY_OUTCOMES", "FleetDatabase", "FleetRun", "fleet_runs"]

#: Outcomes of a database in `fleet history`: those of `fleet up`, plus `running` and
#: `interrupted` (started, never finished) and `not_started` (the run stopped before it).
HISTORY_OUTCOMES = (
    "applied",
    "up_to_date",
    "failed",
    "refused",
    "skipped",
    "running",
    "interrupted",
    "not_started",
)


@attrs.frozen
class FleetDatabase:
    """One database of one fleet run, as the fleet journal recorded it."""

    database: str
    outcome: str
    from_version: int | None = None
    to_version: int | None = None
    error: str | None = None
    run_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


@attrs.frozen
class FleetRun:
    """One `fleet up`: its options, how it ended, and every database's outcome.

    `outcome`: `completed` (every database was tried), `stopped` (the canary or the failure
    budget stopped it: see `reason`), `interrupted` (Ctrl-C, or no `fleet_finished`:
    killed) or `running`. `resumes` names the interrupted run this one took over from.
    """

    fleet_id: str
    started_at: str
    finished_at: str | None
    outcome: str
    reason: str | None
    resumes: str | None
    options: dict[str, Any]
    summary: dict[str, int]
    databases: list[FleetDatabase]


def fleet_runs(events: Iterable[Event], *, live: bool = False) -> list[FleetRun]:
    """Every fleet run the events record, oldest first. Pure.

    `live`: the last run's process still holds the fleet journal (its unfinished
    databases are `running`, not `interrupted`).
    """
    runs: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for event in events:
        d = event.data
        if event.kind == Kind.FLEET_STARTED:
            run = {
                "fleet_id": event.run_id,
                "started_at": event.ts,
                "finished_at": None,
                "outcome": None,
                "reason": None,
                "resumes": d.get("resumes"),
                "options": {k: v for k, v in d.items() if k not in ("databases", "resumes")},
                "databases": {
                    str(db): {"database": str(db), "outcome": "not_started"}
                    for db in d.get("databases", ())
                },
            }
            runs.append(run)
            by_id[event.run_id] = run
            continue
        run = by_id.get(event.run_id)
        if run is None:
            continue  # journal_repaired, or an event of a kind this fold does not know
        if event.kind == Kind.DATABASE_STARTED:
            entry = run["databases"].setdefault(d["database"], {"database": d["database"]})
            entry.update(outcome=None, started_at=event.ts)
        elif event.kind == Kind.DATABASE_FINISHED:
            entry = run["databases"].setdefault(d["database"], {"database": d["database"]})
            entry.update(
                outcome=d.get("outcome"),
                from_version=d.get("from_version"),
                to_version=d.get("to_version"),
                error=d.get("error"),
                run_id=d.get("run_id"),
                finished_at=event.ts,
            )
        elif event.kind == Kind.FLEET_FINISHED:
            run.update(finished_at=event.ts, outcome=d.get("outcome"), reason=d.get("reason"))
    return [_freeze(run, live=live and run is runs[-1]) for run in runs]


def _freeze(run: dict[str, Any], *, live: bool) -> FleetRun:
    """The frozen run; unfinished databases become `running` or `interrupted`."""
    unfinished = "running" if live and run["outcome"] is None else "interrupted"
    databases = []
    for entry in run["databases"].values():
        if entry.get("outcome") is None:
            entry = {**entry, "outcome": unfinished}
        databases.append(FleetDatabase(**entry))
    summary = dict.fromkeys(HISTORY_OUTCOMES, 0)
    for db in databases:
        summary[db.outcome] = summary.get(db.outcome, 0) + 1
    return FleetRun(
        fleet_id=run["fleet_id"],
        started_at=run["started_at"],
        finished_at=run["finished_at"],
        outcome=run["outcome"] or unfinished,
        reason=run["reason"],
        resumes=run["resumes"],
        options=run["options"],
        summary=summary,
        databases=databases,
    )

"""History: every attempt at a migration, as `history` shows it, derived from the state. Pure."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from schemalog.journal.replay import Attempt, State

__all__ = ["HistoryEntry", "Running", "history"]


@attrs.frozen
class HistoryEntry:
    """One attempt at applying or reverting one migration, as `history` shows it."""

    run_id: str
    version: int
    name: str
    direction: str
    outcome: str  # applied | reverted | failed | interrupted | running
    started_at: str
    finished_at: str | None
    error: str | None
    #: `repair` entries (direction `repair`, outcome `accepted`): the checksums and the reason.
    old_checksum: str | None = None
    new_checksum: str | None = None
    reason: str | None = None


@attrs.frozen
class Running:
    """The step a live run is on now, as its lock record says (its events are not committed)."""

    run_id: str
    version: int
    doing: str
    since: str


def history(
    state: State, *, names: Mapping[int, str], live: bool, running: Running | None = None
) -> list[HistoryEntry]:
    """Every attempt in `state`, oldest first, with every `repair` (accepted checksum). Pure.

    `live` says whether a run holds the lock now (its open attempt is `running`, not
    `interrupted`); `running` is the step it is on, shown as a `running` attempt when the
    journal does not have it yet (its `step_started` is inside the uncommitted transaction). A
    run killed inside its transaction lost its uncommitted step events with it: it is shown as
    one interrupted attempt at the step it had reached, named from `names` (version ->
    migration name) when the journal does not name it.
    """
    entries = [_entry(a, live) for a in state.attempts]
    if running is not None and live:
        known = {(a.run_id, a.version) for a in state.attempts if a.outcome is None}
        run = next((r for r in state.runs if r.run_id == running.run_id), None)
        if (running.run_id, running.version) not in known and run is not None:
            entries.append(
                HistoryEntry(
                    run_id=running.run_id,
                    version=running.version,
                    name=names.get(running.version, ""),
                    direction=run.direction or running.doing.split(" ", 1)[0],
                    outcome="running",
                    started_at=running.since,
                    finished_at=None,
                    error=None,
                )
            )
    by_run: dict[str, list[Attempt]] = {}
    for a in state.attempts:
        by_run.setdefault(a.run_id, []).append(a)
    for run in state.runs:
        stopped = run.outcome == "interrupted" or (run.outcome is None and not live)
        if not run.direction or not stopped:
            continue
        done = by_run.get(run.run_id, [])
        if any(a.outcome in (None, "interrupted", "failed") for a in done):
            continue  # the attempt that stopped the run is already listed
        if run.direction == "up":
            step = max([a.version for a in done] + [run.from_version or 0]) + 1
        else:
            step = min([a.version for a in done] + [(run.from_version or 0) + 1]) - 1
        entries.append(
            HistoryEntry(
                run_id=run.run_id,
                version=step,
                name=names.get(step, ""),
                direction=run.direction,
                outcome="interrupted",
                started_at=run.started_at,
                finished_at=run.finished_at,
                error=run.error,
            )
        )
    entries += [
        HistoryEntry(
            run_id=r.run_id,
            version=r.version,
            name=names.get(r.version, ""),
            direction="repair",
            outcome="accepted",
            started_at=r.at,
            finished_at=r.at,
            error=None,
            old_checksum=r.old,
            new_checksum=r.new,
            reason=r.reason,
        )
        for r in state.repairs
    ]
    return sorted(entries, key=lambda h: h.started_at)


def _entry(a: Attempt, live: bool) -> HistoryEntry:
    outcome = a.outcome or ("running" if live else "interrupted")
    return HistoryEntry(
        run_id=a.run_id,
        version=a.version,
        name=a.name,
        direction=a.direction,
        outcome=outcome,
        started_at=a.started_at,
        finished_at=a.finished_at,
        error=a.error,
    )

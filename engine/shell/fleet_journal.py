"""The fleet journal: what every `fleet up` did, one event per line, hash-chained.

`schemalog-fleet.journal.jsonl` (in the working directory, or `--fleet-journal PATH`) holds
the events `fleet_started`, `database_started`, `database_finished` and `fleet_finished` in
the envelope, codec and chain of the database journals (`schemalog.journal`): only its JSONL
form exists, since a fleet has no database of its own. One fleet run at a time writes it:
`<journal>.lock` is taken (as a database's migration lock is) for the whole run. A torn last
line (the fleet process was killed during an append) is saved next to it as
`<journal>.torn-<time>` and cut before the next run appends; a broken chain is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from schemalog.engine.base.errors import ConfigError, LockHeld, LockTimeout
from schemalog.engine.shell.lock import Holder, MigrationLock, probe
from schemalog.journal.chain import GENESIS, find_break, now, seal
from schemalog.journal.errors import JournalChainBroken
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.store import TornTail

__all__ = [
    "DEFAULT_FLEET_JOURNAL",
    "FleetJournal",
    "fleet_journal_live",
    "read_fleet_journal",
]

#: The fleet journal's name in the working directory (the contract: `schemalog help fleets`).
DEFAULT_FLEET_JOURNAL = "schemalog-fleet.journal.jsonl"


def _lock_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".lock")


def read_fleet_journal(path: Path) -> tuple[Event, ...]:
    """Every event of the fleet journal at `path` (none if it does not exist). Read-only.

    A torn last line is left out (the next `fleet up` saves it aside). Raises
    JournalCorrupt for a line that is not an event and JournalChainBroken when the chain
    is broken (an event was changed or removed).
    """
    store = JsonlStore(Path(path))
    events = store.read_intact().events
    _check_chain(Path(path), events)
    return events


def fleet_journal_live(path: Path) -> bool:
    """Whether a live `fleet up` holds the fleet journal at `path` now. Read-only."""
    return probe(_lock_path(Path(path))).held


def _check_chain(path: Path, events: tuple[Event, ...]) -> None:
    broken = find_break(events)
    if broken is not None:
        msg = f"the fleet journal {path} is broken at seq {broken.seq}: {broken.reason}"
        raise JournalChainBroken(
            msg,
            path=str(path),
            hint="keep it for inspection (mv it aside) and pass --fleet-journal NEW_PATH",
        )


class FleetJournal:
    """The fleet journal, open for one fleet run: its lock held, its chain checked.

    Use as a context manager. `events` are the events before this run; `previous` is the
    last earlier run's `fleet_started` event, if any.
    """

    def __init__(self, path: Path, *, fleet_id: str, durability: str = "normal") -> None:
        self.path = Path(path)
        self.fleet_id = fleet_id
        self._store = JsonlStore(self.path, durability=durability)
        self._lock = MigrationLock(_lock_path(self.path))
        self.events: tuple[Event, ...] = ()
        self.saved_torn: Path | None = None
        self._seq, self._prev = 0, GENESIS

    def __enter__(self) -> FleetJournal:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Take the fleet journal's lock, save a torn tail aside, check the chain.

        Raises LockHeld when another fleet run holds it, ConfigError when its directory is
        missing, JournalCorrupt/JournalChainBroken when it cannot be trusted.
        """
        if not self.path.parent.is_dir():
            msg = f"directory {self.path.parent} of the fleet journal does not exist"
            raise ConfigError(msg, hint="create it, or pass --fleet-journal PATH")
        holder = Holder.for_this_process(self.fleet_id, "fleet up")
        try:
            self._lock.acquire(holder, timeout=0)
        except LockTimeout as exc:
            msg = f"another fleet run is writing the fleet journal {self.path} ({exc.what})"
            raise LockHeld(
                msg,
                path=str(self.path),
                hint="wait for it to finish, or give this run its own --fleet-journal PATH",
            ) from exc
        result = self._store.read_intact()
        if result.torn is not None:
            self.saved_torn = self._save_torn(result.torn)
        _check_chain(self.path, result.events)
        self.events = result.events
        if result.events:
            self._seq, self._prev = result.events[-1].seq, result.events[-1].hash

    @property
    def previous(self) -> Event | None:
        """The `fleet_started` event of the last run before this one, or None."""
        for event in reversed(self.events):
            if event.kind == Kind.FLEET_STARTED:
                return event
        return None

    def previous_finished(self) -> bool:
        """Whether the last run before this one recorded `fleet_finished`."""
        last = self.previous
        if last is None:
            return True
        return any(
            e.kind == Kind.FLEET_FINISHED and e.run_id == last.run_id
            for e in self.events
            if e.seq > last.seq
        )

    def record(self, kind: Kind, version: int | None = None, /, **data: Any) -> Event:
        """Append one event of this fleet run; returns it sealed."""
        event = seal(Draft(self.fleet_id, kind, version, data), seq=self._seq + 1, prev=self._prev)
        self._store.append([event])
        self._seq, self._prev = event.seq, event.hash
        return event

    def sync(self) -> None:
        """Make every appended event durable."""
        self._store.sync()

    def close(self) -> None:
        """Sync and close the file, then release the lock."""
        try:
            self._store.close()
        finally:
            self._lock.release()

    def _save_torn(self, torn: TornTail) -> Path:
        saved = self.path.with_name(f"{self.path.name}.torn-{now().replace(':', '')}")
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, torn.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._store.cut_torn_tail(torn)
        return saved

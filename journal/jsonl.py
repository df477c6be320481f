"""The sidecar journal: `<database>.journal.jsonl`, one canonical event per line.

Durability (`durability`): `full` fsyncs after every append; `normal` flushes
every append to the OS and fsyncs only when `sync()` is called — the engine
calls it before a restore (the only moment the table's copy of recent events is
about to be replaced) and at the end of every command. Either way the table
holds a committed copy of every event, so an OS crash loses at most JSONL lines
that recovery mirrors back from the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from schemalog.journal import failpoints
from schemalog.journal.codec import decode, encode
from schemalog.journal.errors import JournalCorrupt, JournalUnavailable
from schemalog.journal.events import Event
from schemalog.journal.store import ReadResult, TornTail

__all__ = ["JsonlStore"]

DURABILITIES = ("normal", "full")


class JsonlStore:
    """Append-only JSONL file of events; created with mode 0600."""

    def __init__(self, path: Path, *, durability: str = "normal") -> None:
        if durability not in DURABILITIES:
            msg = f"unknown durability {durability!r} (expected one of {', '.join(DURABILITIES)})"
            raise ValueError(msg)
        self.path = Path(path)
        self.durability = durability
        self._fd: int | None = None

    def exists(self) -> bool:
        """Whether the file exists. Read-only."""
        return self.path.exists()

    def read(self) -> ReadResult:
        """Every complete line decoded; bytes after the last newline are returned as `torn`.

        Read-only. Raises JournalCorrupt naming the line number for any bad
        complete line, and JournalUnavailable if the file cannot be read.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return ReadResult(events=(), torn=None, exists=False)
        except OSError as exc:
            msg = f"cannot read the JSONL journal {self.path}: {exc.strerror}"
            raise JournalUnavailable(
                msg, path=str(self.path), hint="check its permissions"
            ) from exc
        end = raw.rfind(b"\n") + 1
        torn = TornTail(offset=end, data=raw[end:]) if end < len(raw) else None
        events = []
        for lineno, line in enumerate(raw[:end].split(b"\n")[:-1], start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                msg = f"{self.path} line {lineno} is not UTF-8"
                raise JournalCorrupt(msg, path=str(self.path), hint="see docs/recovery.md") from exc
            events.append(decode(text, where=f"{self.path.name} line {lineno}"))
        return ReadResult(events=tuple(events), torn=torn, exists=True)

    def append(self, events: Sequence[Event]) -> None:
        """Write `events` as lines in one write; fsync when durability is `full`."""
        if not events:
            return
        payload = "".join(encode(e) + "\n" for e in events).encode("utf-8")
        fd = self._open()
        if failpoints.armed("mid_append"):
            os.write(fd, payload[: max(1, len(payload) // 2)])
            failpoints.crash()
        try:
            written = os.write(fd, payload)
            while written < len(payload):
                written += os.write(fd, payload[written:])
            if self.durability == "full":
                os.fsync(fd)
        except OSError as exc:
            msg = f"cannot append to the JSONL journal {self.path}: {exc.strerror}"
            raise JournalUnavailable(
                msg,
                path=str(self.path),
                state="the database journal table holds the events; recovery mirrors them later",
                hint="free disk space or fix permissions, then run `schemalog recover`",
            ) from exc

    def sync(self) -> None:
        """Force appended lines to stable storage."""
        if self._fd is not None:
            os.fsync(self._fd)

    def cut_torn_tail(self, torn: TornTail) -> None:
        """Remove the torn bytes at the end of the file (the caller has saved them)."""
        self.close()
        with open(self.path, "r+b") as fh:
            fh.truncate(torn.offset)
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        """Sync and close the file descriptor (appends reopen it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            try:
                created = not self.path.exists()
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                if created:
                    _fsync_dir(self.path.parent)
            except OSError as exc:
                msg = f"cannot open the JSONL journal {self.path}: {exc.strerror}"
                raise JournalUnavailable(
                    msg, path=str(self.path), hint="check the directory's permissions"
                ) from exc
        return self._fd


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

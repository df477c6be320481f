"""The sidecar journal: `<database>.journal.jsonl`, one canonical event per line.

Durability (`durability`): `full` fsyncs after every append; `normal` flushes
every append to the OS and fsyncs only when `sync()` is called — the engine
calls it before a restore (the only moment the table's copy of recent events is
about to be replaced) and at the end of every command. Either way the table
holds a committed copy of every event, so an OS crash loses at most JSONL lines
that recovery mirrors back from the table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from schemalog.journal import failpoints
from schemalog.journal.codec import decode, encode
from schemalog.journal.durable import (
    fsync_dir,
    open_append,
    open_rw_nofollow,
    os_reason,
    read_at,
    refuse_symlink,
    replace_private_file,
)
from schemalog.journal.errors import JournalCorrupt, JournalUnavailable, NeedsHuman
from schemalog.journal.events import Event, Kind
from schemalog.journal.store import DamagedRange, ReadResult, TornTail

__all__ = ["DURABILITIES", "Durability", "JsonlStore", "damage_error"]

#: Bytes read per step when looking for the last checkpoint from the end of the file.
_BLOCK = 1 << 16
_TAIL = 4096
#: How a checkpoint line looks after its `id` (keys are sorted: `kind` follows `id`).
_CHECKPOINT_MARK = b'","kind":"checkpoint","prev":"'

#: `normal` fsyncs at the end of every command and before a restore; `full` after every append.
Durability = Literal["normal", "full"]
DURABILITIES: tuple[str, ...] = get_args(Durability)


class JsonlStore:
    """Append-only JSONL file of events; created with mode 0600, never through a symlink."""

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
        """Every complete line that holds an event, decoded; the rest reported, not raised.

        Bytes after the last newline are returned as `torn`. Complete lines that hold no event
        at all (not UTF-8, not JSON, not a JSON object: lost, zeroed or garbled pages) are
        returned as `damaged` ranges, each naming its lines, bytes and the seqs around it;
        recovery decides whether the table vouches for them. Read-only. Raises JournalCorrupt
        naming the line for a line that is a JSON object but not the canonical encoding of an
        event (an edited line: no power loss writes one), and JournalUnavailable if the file
        cannot be read.
        """
        return self.read_from(0)

    def read_intact(self) -> ReadResult:
        """`read()` for a reader that has nothing to mend damage from (the fleet journal).

        Raises JournalCorrupt naming the first damaged line. Read-only.
        """
        result = self.read()
        if result.damaged:
            raise damage_error(self.path, result.damaged[0])
        return result

    # -- reading from a checkpoint (journal.recent) ----------------------------------------

    def read_from(self, offset: int) -> ReadResult:
        """The complete lines from byte `offset` (the start of a line) on, decoded, and the
        torn tail as `read` gives it. Read-only; raises what `read` raises. Damaged lines are
        reported as `read` does (line numbers counted from `offset`): the caller then reads
        the whole file, which recovery mends from."""
        refuse_symlink(self.path)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                raw = fh.read()
        except FileNotFoundError:
            return ReadResult(events=(), torn=None, exists=False)
        except OSError as exc:
            msg = f"cannot read the JSONL journal {self.path}: {os_reason(exc)}"
            raise JournalUnavailable(
                msg, path=str(self.path), hint="check its permissions"
            ) from exc
        end = raw.rfind(b"\n") + 1
        torn = TornTail(offset=offset + end, data=raw[end:]) if end < len(raw) else None
        events, damaged = _parse_lines(raw[:end], self.path)
        return ReadResult(events=tuple(events), torn=torn, exists=True, damaged=tuple(damaged))

    def last_checkpoint(
        self, expect: tuple[Event, bytes] | None = None
    ) -> tuple[int, int, Event] | None:
        """(offset of its line, offset after its newline, event) of the last complete
        `checkpoint` line, found by reading the file backwards; None when there is none or it
        cannot be read (the caller then reads the whole file, which reports any damage).
        `expect` is an event and its line (without newline) the caller holds: a line equal
        to it byte for byte is that event, not decoded again. Read-only."""
        try:
            refuse_symlink(self.path)
            with open(self.path, "rb") as fh:
                return _last_checkpoint(fh, os.fstat(fh.fileno()).st_size, expect)
        except (OSError, NeedsHuman):
            return None

    def fingerprint(self) -> tuple[tuple[int, ...], bytes] | None:
        """What identifies the file's content cheaply: its (device, inode, size, mtime,
        ctime) and its last 4 KiB; None when it does not exist. Read-only."""
        try:
            refuse_symlink(self.path)
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                tail = read_at(fh.fileno(), _TAIL, max(0, st.st_size - _TAIL))
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"cannot read the JSONL journal {self.path}: {os_reason(exc)}"
            raise JournalUnavailable(
                msg, path=str(self.path), hint="check its permissions"
            ) from exc
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return key, tail

    def append(self, events: Sequence[Event]) -> None:
        """Write `events` as lines in one write; fsync when durability is `full`.

        All or nothing: if the write fails (disk full, I/O error), the file is cut back to its
        length before the call, so a later append never follows a partial line. Raises
        JournalUnavailable.
        """
        if not events:
            return
        payload = "".join(encode(e) + "\n" for e in events).encode("utf-8")
        fd = self._open()
        if failpoints.armed("mid_append"):
            os.write(fd, payload[: max(1, len(payload) // 2)])
            failpoints.crash()
        start = None
        try:
            start = os.fstat(fd).st_size
            written = os.write(fd, payload)
            while written < len(payload):
                written += os.write(fd, payload[written:])
            if self.durability == "full":
                os.fsync(fd)
        except OSError as exc:
            cut = start is not None and self._cut_back(fd, start)
            msg = f"cannot append to the JSONL journal {self.path}: {os_reason(exc)}"
            raise JournalUnavailable(
                msg,
                path=str(self.path),
                state="the JSONL was left as it was"
                if cut
                else "the JSONL may end in a partial line, which the next command sets aside",
                hint="free disk space or fix permissions, then run `schemalog recover`",
            ) from exc

    def sync(self) -> None:
        """Force appended lines to stable storage; raises JournalUnavailable."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                msg = f"cannot flush the JSONL journal {self.path} to disk: {os_reason(exc)}"
                raise JournalUnavailable(
                    msg,
                    path=str(self.path),
                    state="the events are in the database's journal table; lines of the JSONL "
                    "may be lost in a power cut, and the next command copies them back",
                    hint="check the disk (dmesg), then run `schemalog verify`",
                ) from exc

    def size(self) -> int:
        """The length of the file in bytes now (0 when it does not exist yet)."""
        if self._fd is not None:
            return os.fstat(self._fd).st_size
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def cut_back(self, size: int) -> bool:
        """Undo this process's last append: cut the file back to `size` bytes and sync it.

        Only for an append whose other half (the table) failed, while this process holds the
        migration lock. Returns whether it worked.
        """
        fd = self._open()
        if not self._cut_back(fd, size):
            return False
        try:
            os.fsync(fd)
        except OSError:
            return False
        return True

    def _cut_back(self, fd: int, size: int) -> bool:
        """Truncate the file to `size` after a failed append; whether that worked."""
        try:
            os.ftruncate(fd, size)
        except OSError:
            return False
        return True

    def rewrite(self, events: Sequence[Event]) -> None:
        """Replace the whole file by `events`, one line each (atomically: a temporary file,
        fsync, rename, fsync of the directory). For recovery, which keeps the old file aside
        first. Raises OSError (PlantedSymlink for a link at the path)."""
        self.close()
        replace_private_file(self.path, "".join(encode(e) + "\n" for e in events).encode("utf-8"))

    def cut_torn_tail(self, torn: TornTail) -> None:
        """Remove the torn bytes at the end of the file (the caller has saved them)."""
        self.close()
        fd, _ = open_rw_nofollow(self.path)
        try:
            os.ftruncate(fd, torn.offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Sync and close the file descriptor (appends reopen it); never raises for the sync
        (a failed fsync here is reported by `sync()`, which every command calls first)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            try:
                fd, created = open_append(self.path)
                self._fd = fd
                if created:
                    fsync_dir(self.path.parent)
            except OSError as exc:
                msg = f"cannot open the JSONL journal {self.path}: {os_reason(exc)}"
                raise JournalUnavailable(
                    msg,
                    path=str(self.path),
                    state="nothing was written to the JSONL",
                    hint="check the directory's permissions and free space",
                ) from exc
        return self._fd


def damage_error(path: Path, damage: DamagedRange) -> JournalCorrupt:
    """The refusal for damaged JSONL lines that nothing vouches for, naming the first line."""
    more = f" (lines {damage.lines} hold no event)" if damage.first_line != damage.last_line else ""
    msg = f"{path} line {damage.first_line} is {damage.reason}{more}"
    return JournalCorrupt(
        msg,
        path=str(path),
        hint="see the recovery runbook (a damaged JSONL), `schemalog help recovery`",
    )


def _parse_lines(raw: bytes, path: Path) -> tuple[list[Event], list[DamagedRange]]:
    """The events of the complete lines `raw`, and the ranges of lines that hold none."""
    events: list[Event] = []
    damaged: list[DamagedRange] = []
    opened: tuple[int, int, str] | None = None  # the damaged run: offset, first line, reason

    def close(end: int, last_line: int, next_seq: int | None) -> None:
        assert opened is not None
        start, first_line, reason = opened
        prev_seq = events[-1].seq if events else 0
        damaged.append(
            DamagedRange(
                start, end, first_line, last_line, reason, raw[start:end], prev_seq, next_seq
            )
        )

    offset = 0
    lines = raw.split(b"\n")[:-1]
    for lineno, line in enumerate(lines, start=1):
        found = _event_or_damage(line, path, lineno)
        if isinstance(found, str):
            opened = opened or (offset, lineno, found)
        else:
            if opened is not None:
                close(offset, lineno - 1, found.seq)
                opened = None
            events.append(found)
        offset += len(line) + 1
    if opened is not None:
        close(offset, len(lines), None)
    return events, damaged


def _event_or_damage(line: bytes, path: Path, lineno: int) -> Event | str:
    """The event a line holds, or why it holds none; raises JournalCorrupt for an edited line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        return decode(text, where=f"{path.name} line {lineno}")
    except JournalCorrupt as exc:
        try:
            parsed = json.loads(text)
        except ValueError:
            return "not JSON"
        if not isinstance(parsed, dict):
            return "not a JSON object"
        # A JSON object that is not an event's canonical line was written by someone.
        raise JournalCorrupt(exc.what, path=str(path), hint=exc.hint) from exc


def _last_checkpoint(
    fh: BinaryIO, size: int, expect: tuple[Event, bytes] | None
) -> tuple[int, int, Event] | None:
    """Scan `fh` backwards for the last complete line holding a checkpoint event."""
    end = size  # look for a mark that ends at or before `end`
    while True:
        mark = _rfind(fh, _CHECKPOINT_MARK, end)
        if mark < 0:
            return None
        line_start = _rfind(fh, b"\n", mark) + 1
        line_end = _find(fh, b"\n", mark, size)
        if line_end >= 0:  # else: the torn last line
            fh.seek(line_start)
            raw = fh.read(line_end - line_start)
            if expect is not None and raw == expect[1]:
                return line_start, line_end + 1, expect[0]
            event = decode(raw.decode("utf-8"), where="checkpoint")
            if event.kind is Kind.CHECKPOINT:
                return line_start, line_end + 1, event
        end = mark + len(_CHECKPOINT_MARK) - 1  # a mark inside a payload: look before it


def _rfind(fh: BinaryIO, needle: bytes, end: int) -> int:
    """The offset of the last `needle` lying wholly before `end`, or -1."""
    hi = end
    while hi > 0:
        lo = max(0, hi - _BLOCK)
        fh.seek(lo)
        chunk = fh.read(min(end, hi + len(needle) - 1) - lo)
        found = chunk.rfind(needle)
        if found >= 0:
            return lo + found
        hi = lo
    return -1


def _find(fh: BinaryIO, needle: bytes, start: int, size: int) -> int:
    """The offset of the first `needle` at or after `start`, or -1."""
    at = start
    while at < size:
        fh.seek(at)
        chunk = fh.read(_BLOCK)
        found = chunk.find(needle)
        if found >= 0:
            return at + found
        at += max(1, len(chunk) - len(needle) + 1)
        if not chunk:
            break
    return -1

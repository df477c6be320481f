"""A power-loss model: which file contents a crash at any instant of a run can leave.

The run is recorded with strace (`-f -y -xx -s 16M`): every openat, write, pwrite64, writev,
copy_file_range, ftruncate, lseek, fsync, fdatasync, rename, unlink, mkdir and close, with
the bytes written and the path behind each descriptor. The trace becomes a list of
operations on inodes (data) and on directory entries (namespace), starting from a snapshot
of the world taken before the run.

A crash state is (crash point i, choice, model): the operations before i happened, the
ones from i on did not. What is durable at the crash:

- data: for each inode, its content as of its last fsync/fdatasync before i (any fsync of a
  file makes all its data durable, fdatasync too: the size is data here); every later write
  or truncate is, per 4 KiB page of it, `lost`, `kept` or replaced by `garbage` (random
  bytes), as the choice says (`random`: each page picks one of the three, seeded).
- namespace (create, mkdir, rename, unlink): model `posix` — an entry change is durable only
  after an fsync of the directory holding it (both directories for a rename); model
  `ordered` (ext4 data=ordered, xfs) — any later fsync of any file commits every earlier
  entry change. A change not yet durable is lost or kept as the choice says; `random` keeps
  a prefix of them (journalling filesystems commit entry changes in order).

`materialise(state, target)` writes the crash state's files into `target`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

from tests.faults.world import Run, run_cli

STRACE = shutil.which("strace") or "/usr/bin/strace"
PAGE = 4096
TRACED = (
    "openat,write,pwrite64,writev,copy_file_range,ftruncate,lseek,fsync,fdatasync,"
    "rename,renameat,renameat2,unlink,unlinkat,mkdir,rmdir,close"
)
CHOICES = ("lost", "kept", "garbage", "random")
MODELS = ("posix", "ordered")


# --- decoding strace's output ----------------------------------------------------------

_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f", '"': b'"', "\\": b"\\"}


def unquote(text: str) -> bytes:
    """The bytes of a C string body as strace prints it with -xx (\\xHH and \\n escapes)."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
        elif text[i + 1] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif text[i + 1].isdigit():
            j = i + 1
            while j < len(text) and j < i + 4 and text[j].isdigit():
                j += 1
            out.append(int(text[i + 1 : j], 8))
            i = j
        else:
            out += _ESCAPES.get(text[i + 1], text[i + 1].encode())
            i += 2
    return bytes(out)


_STR = r'"((?:[^"\\]|\\.)*)"'
_FD = r"(-?\d+|AT_FDCWD)(?:<((?:[^>\\]|\\.)*)>)?"
_CALL = re.compile(r"^(\d+)\s+([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+)(?:<((?:[^>\\]|\\.)*)>)?(.*)$")


def merge(trace: str) -> list[tuple[int, str, str, int, str]]:
    """(tid, name, args, result, result's fd path) of every finished call, in order.

    Calls cut by another thread (`<unfinished ...>` / `<... name resumed>`) are joined.
    """
    pending: dict[int, str] = {}
    calls = []
    for line in trace.splitlines():
        head = re.match(r"^(\d+)\s+", line)
        if head is None:
            continue
        tid = int(head.group(1))
        if line.endswith("<unfinished ...>"):
            pending[tid] = line[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"^\d+\s+<\.\.\. [a-z0-9_]+ resumed>\s?(.*)$", line)
        if resumed:
            if tid not in pending:
                continue
            line = pending.pop(tid) + resumed.group(1)
        match = _CALL.match(line)
        if match is None:
            continue
        fd_path = unquote(match.group(5)).decode(errors="replace") if match.group(5) else ""
        calls.append((tid, match.group(2), match.group(3), int(match.group(4)), fd_path))
    return calls


# --- the operations ----------------------------------------------------------------------


@attrs.frozen
class Data:
    """Bytes written to an inode at an offset, or (data None) a truncation to `offset`."""

    inode: int
    offset: int
    data: bytes | None


@attrs.frozen
class Sync:
    """An fsync/fdatasync of an inode (a file) or of a directory (`directory` set)."""

    inode: int | None
    directory: str | None


@attrs.frozen
class Name:
    """A change of directory entries: create, mkdir, rename, unlink, rmdir."""

    action: str
    path: str
    target: str | None = None
    inode: int | None = None

    def directories(self) -> set[str]:
        """The directories whose entries this changes."""
        dirs = {os.path.dirname(self.path)}
        if self.target is not None:
            dirs.add(os.path.dirname(self.target))
        return dirs


Op = Data | Sync | Name


@attrs.frozen
class Recording:
    """The world before the run and the run's operations on it."""

    files: dict[str, tuple[int, int]]  # relative path -> (inode, mode) before the run
    dirs: dict[str, int]  # relative directory -> mode before the run
    contents: dict[int, bytes]  # inode -> content before the run
    ops: tuple[Op, ...]
    labels: tuple[str, ...]  # one short description per op
    run: Run


class _Parser:
    """Turns the merged calls of a run in `root` into operations, tracking volatile state."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.files: dict[str, tuple[int, int]] = {}
        self.dirs: dict[str, int] = {}
        self.contents: dict[int, bytes] = {}
        for current, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(current, root)
            self.dirs["" if rel_dir == "." else rel_dir] = stat.S_IMODE(os.stat(current).st_mode)
            for name in filenames:
                path = os.path.join(current, name)
                inode = len(self.contents) + 1
                rel = os.path.relpath(path, root)
                self.files[rel] = (inode, stat.S_IMODE(os.stat(path).st_mode))
                self.contents[inode] = Path(path).read_bytes()
            dirnames.sort()
        self.names: dict[str, int] = {p: i for p, (i, _) in self.files.items()}
        self.live_dirs: set[str] = set(self.dirs)
        self.volatile: dict[int, bytearray] = {i: bytearray(c) for i, c in self.contents.items()}
        self.fds: dict[int, tuple[str, object]] = {}  # fd -> ("file", inode) | ("dir", path)
        self.pos: dict[int, int] = {}
        self.append: set[int] = set()
        self.ops: list[Op] = []
        self.labels: list[str] = []

    def rel(self, path: str) -> str | None:
        """`path` relative to the world, or None when it is outside it."""
        path = path.removesuffix(" (deleted)")
        if not path.startswith("/"):
            path = os.path.join(self.root, path)
        path = os.path.normpath(path)
        if path == self.root:
            return ""
        if path.startswith(self.root + "/"):
            return path[len(self.root) + 1 :]
        return None

    def emit(self, op: Op, label: str) -> None:
        self.ops.append(op)
        self.labels.append(label)

    def new_inode(self) -> int:
        inode = max(self.volatile, default=0) + 1
        self.volatile[inode] = bytearray()
        return inode

    def target(
        self, args: str, fd_path: str | None = None
    ) -> tuple[int, tuple[str, object] | None]:
        """The descriptor at the start of `args` and what it refers to (None: outside)."""
        match = re.match(_FD, args)
        fd = int(match.group(1)) if match and match.group(1) != "AT_FDCWD" else -1
        if fd in self.fds:
            return fd, self.fds[fd]
        path = unquote(match.group(2)).decode(errors="replace") if match and match.group(2) else ""
        rel = self.rel(path) if path else None
        if rel is None:
            return fd, None
        if rel in self.names:
            return fd, ("file", self.names[rel])
        if rel in self.live_dirs:
            return fd, ("dir", rel)
        return fd, None

    def write_at(self, inode: int, offset: int, data: bytes, label: str) -> None:
        buf = self.volatile[inode]
        if len(buf) < offset:
            buf.extend(b"\0" * (offset - len(buf)))
        buf[offset : offset + len(data)] = data
        self.emit(Data(inode, offset, data), label)

    def strings(self, args: str) -> list[bytes]:
        return [unquote(s) for s in re.findall(_STR, args)]

    def call(self, name: str, args: str, result: int, fd_path: str) -> None:
        if result < 0:
            return
        if name == "openat":
            path = unquote(re.search(_STR, args).group(1)).decode(errors="replace")
            rel = self.rel(path)
            if rel is None:
                return
            flags = args.split(",")[2] if args.count(",") >= 2 else ""
            if rel in self.live_dirs or "O_DIRECTORY" in flags:
                self.fds[result] = ("dir", rel)
                return
            if rel not in self.names:
                inode = self.new_inode()
                self.names[rel] = inode
                self.emit(Name("create", rel, inode=inode), f"create {rel}")
            inode = self.names[rel]
            self.fds[result] = ("file", inode)
            self.pos[result] = 0
            if "O_APPEND" in flags:
                self.append.add(result)
            else:
                self.append.discard(result)
            if "O_TRUNC" in flags and self.volatile[inode]:
                self.volatile[inode] = bytearray()
                self.emit(Data(inode, 0, None), f"truncate {rel} (O_TRUNC)")
        elif name == "close":
            fd, _ = self.target(args)
            self.fds.pop(fd, None)
            self.pos.pop(fd, None)
        elif name in {"write", "pwrite64", "writev"}:
            fd, ref = self.target(args)
            if ref is None or ref[0] != "file":
                return
            inode = ref[1]
            data = b"".join(self.strings(args))[:result]
            if name == "pwrite64":
                offset = int(args.rsplit(",", 1)[1])
            elif fd in self.append:
                offset = len(self.volatile[inode])
            else:
                offset = self.pos.get(fd, 0)
            self.write_at(
                inode, offset, data, f"{name} {result} B @{offset} to {self.path_of(inode)}"
            )
            if name != "pwrite64":
                self.pos[fd] = offset + result
        elif name == "lseek":
            fd, ref = self.target(args)
            if ref is not None:
                self.pos[fd] = result
        elif name == "ftruncate":
            fd, ref = self.target(args)
            if ref is None or ref[0] != "file":
                return
            length = int(args.rsplit(",", 1)[1])
            buf = self.volatile[ref[1]]
            del buf[length:]
            buf.extend(b"\0" * (length - len(buf)))
            self.emit(Data(ref[1], length, None), f"ftruncate {self.path_of(ref[1])} to {length}")
        elif name == "copy_file_range":
            self.copy(args, result)
        elif name in {"fsync", "fdatasync"}:
            _, ref = self.target(args)
            if ref is None:
                return
            if ref[0] == "dir":
                self.emit(Sync(None, ref[1]), f"{name} directory {ref[1] or '.'}")
            else:
                self.emit(Sync(ref[1], None), f"{name} {self.path_of(ref[1])}")
        elif name in {"rename", "renameat", "renameat2"}:
            old, new = (s.decode(errors="replace") for s in self.strings(args)[:2])
            old_rel, new_rel = self.rel(old), self.rel(new)
            if old_rel is None or new_rel is None:
                return
            if old_rel in self.names:
                self.names[new_rel] = self.names.pop(old_rel)
            elif old_rel in self.live_dirs:
                self.live_dirs = {
                    new_rel + d[len(old_rel) :]
                    if d == old_rel or d.startswith(old_rel + "/")
                    else d
                    for d in self.live_dirs
                }
            self.emit(Name("rename", old_rel, new_rel), f"rename {old_rel} -> {new_rel}")
        elif name in {"unlink", "unlinkat", "rmdir"}:
            path = self.strings(args)[0].decode(errors="replace")
            rel = self.rel(path)
            if rel is None:
                return
            if rel in self.names:
                self.names.pop(rel)
                self.emit(Name("unlink", rel), f"unlink {rel}")
            elif rel in self.live_dirs:
                self.live_dirs.discard(rel)
                self.emit(Name("rmdir", rel), f"rmdir {rel}")
        elif name == "mkdir":
            rel = self.rel(self.strings(args)[0].decode(errors="replace"))
            if rel is not None:
                self.live_dirs.add(rel)
                self.emit(Name("mkdir", rel), f"mkdir {rel}")

    def copy(self, args: str, result: int) -> None:
        parts = re.match(
            rf"{_FD}, (NULL|\[(\d+)[^\]]*\]), {_FD}, (NULL|\[(\d+)[^\]]*\]), (\d+)", args
        )
        if parts is None or result <= 0:
            return
        fd_in, ref_in = self.target(args)
        out_args = args[parts.start(5) :]
        fd_out, ref_out = self.target(out_args)
        if ref_in is None or ref_out is None or ref_in[0] != "file" or ref_out[0] != "file":
            return
        off_in = int(parts.group(4)) if parts.group(4) else self.pos.get(fd_in, 0)
        off_out = int(parts.group(8)) if parts.group(8) else self.pos.get(fd_out, 0)
        data = bytes(self.volatile[ref_in[1]][off_in : off_in + result])
        self.write_at(
            ref_out[1], off_out, data, f"copy_file_range {result} B to {self.path_of(ref_out[1])}"
        )
        if not parts.group(4):
            self.pos[fd_in] = off_in + result
        if not parts.group(8):
            self.pos[fd_out] = off_out + result

    def path_of(self, inode: int) -> str:
        return next((p for p, i in self.names.items() if i == inode), f"<inode {inode}>")


def record(root: Path, args: Sequence[str], work: Path) -> Recording:
    """Run `schemalog ARGS` in `root` under strace and return its operations on the world."""
    parser = _Parser(root)
    trace = work / "power.trace"
    prefix = [STRACE, "-f", "-qq", "-y", "-xx", "-s", "16777216", "-o", str(trace)]
    prefix += ["-e", "trace=" + TRACED]
    run = run_cli(root, args, prefix=prefix)
    for _, name, call_args, result, fd_path in merge(trace.read_text(errors="replace")):
        parser.call(name, call_args, result, fd_path)
    trace.unlink()
    return Recording(
        files=parser.files,
        dirs=parser.dirs,
        contents=parser.contents,
        ops=tuple(parser.ops),
        labels=tuple(parser.labels),
        run=run,
    )


# --- crash states ------------------------------------------------------------------------


@attrs.frozen
class State:
    """A crash after the first `point` operations, with unsynced changes as `choice` says."""

    point: int
    choice: str
    model: str
    seed: int = 0

    @property
    def name(self) -> str:
        """`point/choice/model[/seed]`."""
        tail = f"/{self.seed}" if self.choice == "random" else ""
        return f"{self.point}/{self.choice}/{self.model}{tail}"


def crash_points(recording: Recording) -> list[int]:
    """The points worth crashing at: before and after every sync, rename and unlink, the end."""
    points = set()
    for i, op in enumerate(recording.ops):
        if isinstance(op, Sync) or (isinstance(op, Name) and op.action in {"rename", "unlink"}):
            points.update({i, i + 1})
    points.add(len(recording.ops))
    return sorted(points)


def _choose(choice: str, rng: random.Random) -> str:
    return rng.choice(("lost", "kept", "garbage")) if choice == "random" else choice


def durable_files(
    recording: Recording, state: State
) -> tuple[dict[str, int], set[str], dict[int, bytes]]:
    """(path -> inode, directories, inode -> content) on disk after the crash `state`."""
    rng = random.Random(f"{state.point}-{state.choice}-{state.model}-{state.seed}")
    ops = recording.ops[: state.point]
    # Data: the content at each inode's last sync, then the unsynced changes as chosen.
    last_sync: dict[int, int] = {}
    for i, op in enumerate(ops):
        if isinstance(op, Sync) and op.inode is not None:
            last_sync[op.inode] = i
    contents = {i: bytearray(c) for i, c in recording.contents.items()}
    for i, op in enumerate(ops):
        if not isinstance(op, Data):
            continue
        buf = contents.setdefault(op.inode, bytearray())
        synced = i < last_sync.get(op.inode, -1)
        if op.data is None:  # a truncation
            if synced or _choose(state.choice, rng) != "lost":
                del buf[op.offset :]
                buf.extend(b"\0" * (op.offset - len(buf)))
            continue
        for start in range(0, len(op.data), PAGE):
            piece = op.data[start : start + PAGE]
            fate = "kept" if synced else _choose(state.choice, rng)
            if fate == "lost":
                continue
            if fate == "garbage":
                piece = rng.randbytes(len(piece))
            at = op.offset + start
            if len(buf) < at:
                buf.extend(b"\0" * (at - len(buf)))
            buf[at : at + len(piece)] = piece
    # Namespace: durable changes, then a prefix (or all, or none) of the others.
    durable = []
    for i, op in enumerate(ops):
        if not isinstance(op, Name):
            continue
        later = [s for s in ops[i + 1 :] if isinstance(s, Sync)]
        if state.model == "ordered":
            durable.append(bool(later))
        else:
            synced_dirs = {s.directory for s in later if s.directory is not None}
            durable.append(op.directories() <= synced_dirs)
    pending = durable.count(False)
    keep = {"lost": 0, "garbage": 0, "kept": pending}.get(state.choice)
    if keep is None:
        keep = rng.randint(0, pending)
    names = {p: i for p, (i, _) in recording.files.items()}
    dirs = set(recording.dirs)
    seen_pending = 0
    for op, is_durable in zip((o for o in ops if isinstance(o, Name)), durable, strict=True):
        if not is_durable:
            seen_pending += 1
            if seen_pending > keep:
                continue
        _apply_name(op, names, dirs)
    return names, dirs, {i: bytes(c) for i, c in contents.items()}


def _apply_name(op: Name, names: dict[str, int], dirs: set[str]) -> None:
    if op.action == "create" and op.inode is not None:
        if os.path.dirname(op.path) in dirs:
            names[op.path] = op.inode
    elif op.action == "mkdir":
        dirs.add(op.path)
    elif op.action == "rename" and op.target is not None:
        if op.path in names and os.path.dirname(op.target) in dirs:
            names[op.target] = names.pop(op.path)
        elif op.path in dirs:
            moved = {d for d in dirs if d == op.path or d.startswith(op.path + "/")}
            dirs -= moved
            dirs |= {op.target + d[len(op.path) :] for d in moved}
            for p in [p for p in names if p.startswith(op.path + "/")]:
                names[op.target + p[len(op.path) :]] = names.pop(p)
    elif op.action == "unlink":
        names.pop(op.path, None)
    elif op.action == "rmdir":
        dirs.discard(op.path)


def materialise(recording: Recording, state: State, target: Path) -> None:
    """Write the files of crash `state` into `target` (created, must not exist)."""
    names, dirs, contents = durable_files(recording, state)
    target.mkdir(parents=True)
    for rel in sorted(dirs, key=len):
        if rel:
            (target / rel).mkdir(parents=True, exist_ok=True)
            os.chmod(target / rel, recording.dirs.get(rel, 0o700))
    modes = {i: m for i, m in recording.files.values()}
    for rel, inode in names.items():
        if os.path.dirname(rel) not in dirs:
            continue
        path = target / rel
        path.write_bytes(contents.get(inode, b""))
        os.chmod(path, modes.get(inode, 0o600))


def describe(recording: Recording, state: State) -> str:
    """What happened last before the crash point, for reports."""
    if state.point == 0:
        return "before the first operation"
    return f"after op {state.point - 1}: {recording.labels[state.point - 1]}"


def strace_available() -> bool:
    """True when strace runs here."""
    try:
        return (
            subprocess.run([STRACE, "-V"], capture_output=True, timeout=10, check=False).returncode
            == 0
        )
    except OSError:
        return False

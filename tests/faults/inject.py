"""Syscall fault injection with strace: make the N-th call of one syscall fail.

strace counts invocations per traced thread and per syscall (`--inject=SYSCALL:when=N`
injects the N-th call of SYSCALL in every thread that makes that many), so each syscall of
a class is injected on its own: `write`, then `pwrite64`, then `writev`. Only the
schemalog process and its threads are traced (`-f`, no shell in between). Whether a fault
fired is read from strace's own output (`(INJECTED)`), which also names the file (`-y`).
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import attrs

from tests.faults.world import Run, run_cli

STRACE = shutil.which("strace") or "/usr/bin/strace"

# The syscall classes of the campaign, each with the errors it is faulted with.
CLASSES: dict[str, tuple[str, ...]] = {
    "write": ("write", "pwrite64", "writev"),
    "fsync": ("fsync", "fdatasync"),
    "rename": ("rename", "renameat", "renameat2"),
    "unlink": ("unlink", "unlinkat"),
    "ftruncate": ("ftruncate",),
    "copy_file_range": ("copy_file_range",),
    "openat": ("openat",),
}
ERRORS: dict[str, tuple[str, ...]] = {
    "unlink": ("EIO",),  # unlink never reports ENOSPC
}
DEFAULT_ERRORS = ("EIO", "ENOSPC")
ALL_SYSCALLS = tuple(name for names in CLASSES.values() for name in names)

_LINE = re.compile(r"^(?P<tid>\d+)\s+(?P<name>[a-z0-9_]+)\((?P<rest>.*)$")


def errors_for(fault_class: str) -> tuple[str, ...]:
    """The errnos `fault_class` is injected with."""
    return ERRORS.get(fault_class, DEFAULT_ERRORS)


def class_of(syscall: str) -> str:
    """The class a syscall belongs to."""
    return next(c for c, names in CLASSES.items() if syscall in names)


@attrs.frozen
class Call:
    """One traced syscall: the thread, its name, its N among that thread's calls of it."""

    tid: int
    name: str
    n: int
    text: str


def parse_calls(trace: str) -> list[Call]:
    """The calls of an `strace -f` output, numbered per thread and syscall as strace does."""
    seen: Counter[tuple[int, str]] = Counter()
    calls = []
    for line in trace.splitlines():
        match = _LINE.match(line)
        if match is None:  # "<... resumed>", signals, exits
            continue
        tid, name = int(match["tid"]), match["name"]
        seen[tid, name] += 1
        calls.append(Call(tid, name, seen[tid, name], line))
    return calls


def strace_prefix(output: Path, syscalls: Sequence[str], inject: str | None = None) -> list[str]:
    """The strace argv tracing `syscalls` of the process and its threads into `output`."""
    argv = [STRACE, "-f", "--seccomp-bpf", "-qq", "-y", "-o", str(output)]
    argv += ["-e", "trace=" + ",".join(syscalls)]
    if inject:
        argv += ["-e", "inject=" + inject]
    return argv


def count_calls(root: Path, args: Sequence[str], work: Path) -> tuple[Run, list[Call]]:
    """Run `schemalog ARGS` traced but not faulted in `root`; return it and its calls."""
    trace = work / "count.trace"
    run = run_cli(root, args, prefix=strace_prefix(trace, ALL_SYSCALLS))
    return run, parse_calls(trace.read_text(errors="replace"))


def points(calls: Sequence[Call], syscall: str, root: Path) -> list[int]:
    """The N worth injecting for `syscall`: every N some thread reaches.

    For `openat` only the main thread's calls that open a file of the world (not a migration
    file, not the interpreter's imports) count: a small N would also fail the main thread's
    start-up, so the other threads' few openat calls are not injected.
    """
    mine = [c for c in calls if c.name == syscall]
    if syscall == "openat":
        main = calls[0].tid if calls else 0
        return sorted({c.n for c in mine if c.tid == main and _opens_world_file(c.text, root)})
    return list(range(1, max((c.n for c in mine), default=0) + 1))


_OPENAT = re.compile(r'openat\([^,]*, "(?P<path>(?:[^"\\]|\\.)*)"')


def _opens_world_file(text: str, root: Path) -> bool:
    """True when an openat line opens a file of the world (not a migration, not a .pyc)."""
    match = _OPENAT.search(text)
    if match is None:
        return False
    path = match["path"]
    inside = not path.startswith("/") or path.startswith(str(root) + "/") or path == str(root)
    return inside and "migrations" not in path and "__pycache__" not in path


@attrs.frozen
class Injected:
    """A faulted run and the calls strace made fail in it."""

    run: Run
    fired: tuple[str, ...]


def inject(
    root: Path, args: Sequence[str], syscall: str, errno: str, n: int, work: Path
) -> Injected:
    """Run `schemalog ARGS` in `root` with the N-th `syscall` of each thread failing `errno`."""
    trace = work / f"{syscall}-{errno}-{n}.trace"
    spec = f"{syscall}:error={errno}:when={n}"
    run = run_cli(root, args, prefix=strace_prefix(trace, [syscall], spec))
    text = trace.read_text(errors="replace") if trace.exists() else ""
    fired = tuple(_shorten(line, root) for line in text.splitlines() if "(INJECTED)" in line)
    return Injected(run, fired)


def _shorten(line: str, root: Path) -> str:
    """A trace line without the thread id and the world's directory, long strings clipped."""
    line = re.sub(r"^\d+\s+", "", line).replace(str(root) + "/", "").replace(str(root), ".")
    return re.sub(r'"((?:[^"\\]|\\.){40})(?:[^"\\]|\\.)*"', r'"\1"...', line)


def reproduce(operation_args: Sequence[str], syscall: str, errno: str, n: int) -> str:
    """A shell line reproducing the case by hand in a copy of its starting world."""
    from tests.faults.world import base_argv

    return (
        f"strace -f -qq -y -e trace={syscall} -e inject={syscall}:error={errno}:when={n} "
        f"python -m schemalog {' '.join(base_argv())} {' '.join(operation_args)}"
    )

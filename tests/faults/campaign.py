"""What the campaign runs: the full loop (`SCHEMALOG_FAULTS=full`) or the bounded sample
`make test` runs, the cases of each part, and running cases in parallel.

Everything is deterministic: samples are drawn with fixed seeds, and each case runs in a
directory of its own (cases may run in parallel: `SCHEMALOG_FAULTS_JOBS`, default 2).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import attrs

from tests.faults import inject, powerloss
from tests.faults.results import Record, save
from tests.faults.verdict import judge
from tests.faults.world import (
    OPERATIONS,
    Operation,
    Run,
    Template,
    copy_world,
    notes_digest,
    operation,
    run_cli,
)

T = TypeVar("T")
SEED = 20261201


def full() -> bool:
    """True when the full campaign was asked for (SCHEMALOG_FAULTS=full)."""
    return os.environ.get("SCHEMALOG_FAULTS", "") == "full"


def jobs() -> int:
    """How many cases run at once."""
    return max(1, int(os.environ.get("SCHEMALOG_FAULTS_JOBS", "2")))


def cap() -> int:
    """At most this many N per syscall, operation and errno in the full loop (0: every N)."""
    return int(os.environ.get("SCHEMALOG_FAULTS_CAP", "12"))


def _discard(root: Path) -> None:
    """Remove a case's directory, unless SCHEMALOG_FAULTS_KEEP asks to keep it."""
    if not os.environ.get("SCHEMALOG_FAULTS_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


def spread(values: Sequence[int], most: int) -> list[int]:
    """At most `most` of `values`, evenly spaced, always with the first and the last."""
    if most <= 0 or len(values) <= most:
        return list(values)
    if most == 1:
        return [values[0]]
    picked = {values[round(i * (len(values) - 1) / (most - 1))] for i in range(most)}
    return sorted(picked)


def parallel(function: Callable[[T], Record | None], items: Iterable[T]) -> list[Record]:
    """`function` over `items`, `jobs()` at a time; the records it returned, in order."""
    with ThreadPoolExecutor(max_workers=jobs()) as pool:
        return [r for r in pool.map(function, items) if r is not None]


class Counts:
    """The un-injected traced run of each operation, made once per session (thread-safe)."""

    def __init__(self, template: Template, work: Path) -> None:
        self.template = template
        self.work = work
        self._calls: dict[str, list[inject.Call]] = {}
        self._roots: dict[str, Path] = {}
        self._lock = threading.Lock()

    def calls(self, op: Operation) -> tuple[list[inject.Call], Path]:
        """The calls `op` makes, and the directory it was counted in."""
        with self._lock:
            if op.name not in self._calls:
                root = copy_world(op.source(self.template), self.work / f"count-{op.name}")
                run, calls = inject.count_calls(root, op.args(self.template), self.work)
                assert run.returncode == 0, f"un-injected {run.summary()}\n{run.stderr}"
                self._calls[op.name], self._roots[op.name] = calls, root
            return self._calls[op.name], self._roots[op.name]

    def points(self, op: Operation, syscall: str) -> list[int]:
        """Every N of `syscall` that fires in `op`."""
        calls, root = self.calls(op)
        return inject.points(calls, syscall, root)


# --- part 1: syscall faults ----------------------------------------------------------------


def syscall_cases(counts: Counts, fault_class: str) -> list[tuple[str, str, str, int]]:
    """(operation, syscall, errno, N) to run for `fault_class`: all (capped) or a sample."""
    cases = []
    for op in OPERATIONS:
        for syscall in inject.CLASSES[fault_class]:
            pts = counts.points(op, syscall)
            for errno in inject.errors_for(fault_class):
                cases += [(op.name, syscall, errno, n) for n in spread(pts, cap())]
    if full():
        return cases
    rng = random.Random(f"{SEED}-{fault_class}")
    return sorted(rng.sample(cases, min(2, len(cases))))


def loop_ends(counts: Counts, op: Operation, syscall: str, errno: str, work: Path) -> bool:
    """True when the N after the last counted call fires no fault (the loop's end)."""
    calls, _ = counts.calls(op)
    last = max((c.n for c in calls if c.name == syscall), default=0)
    if not last:
        return True
    root = copy_world(op.source(counts.template), work / f"end-{op.name}-{syscall}-{errno}")
    try:
        return not inject.inject(
            root, op.args(counts.template), syscall, errno, last + 1, work
        ).fired
    finally:
        _discard(root)


def run_syscall_case(
    template: Template, work: Path, op_name: str, syscall: str, errno: str, n: int
) -> Record | None:
    """Fault the N-th `syscall` of `op_name` with `errno`, judge the outcome (None: no fire)."""
    op = operation(op_name)
    name = f"{op_name}/{syscall}/{errno}/{n}"
    root = copy_world(op.source(template), work / name.replace("/", "-"))
    try:
        args = op.args(template)
        injected = inject.inject(root, args, syscall, errno, n, work)
        if not injected.fired:
            return None
        verdict = judge(
            root,
            injected.run,
            seeded=notes_digest(template.at_one / "app.db"),
            rows_may_go=op_name == "down",
        )
        record = Record(
            kind="syscall",
            operation=op_name,
            fault=f"{inject.class_of(syscall)}/{errno}",
            case=name,
            detail=injected.fired,
            reproduce=f"python -m tests.faults syscall {op_name} {syscall} {errno} {n}",
            verdict=verdict,
        )
        save(record)
        return record
    finally:
        _discard(root)


# --- part 2: a full disk -----------------------------------------------------------------

DISK_STEP = 12 * 1024
DISK_LEVELS = 41


def disk_levels() -> list[int]:
    """The free-space levels (bytes) `up` starts with: 0 .. 480 KiB, or two in the sample.

    A successful `up` of the fixture needs about 300 KiB (two backups, the rollback journal of
    VACUUM, the grown database): the top levels leave more than it needs.
    """
    levels = [i * DISK_STEP for i in range(DISK_LEVELS)]
    if full():
        return levels
    return sorted(random.Random(f"{SEED}-disk").sample(levels[:20], 2))


def run_disk_case(template: Template, work: Path, free: int) -> Record:
    """Run `up` on a tmpfs with `free` bytes left, free the space, judge the next commands."""
    from tests.faults import fullfs

    mount = work / f"fs-{free}"
    with fullfs.mounted(mount):
        root = copy_world(template.at_one, mount / "world")
        filler = fullfs.fill(mount, free)
        reached = fullfs.free_bytes(mount)
        faulted = _run(root, ["up"])
        filler.unlink()
        verdict = judge(root, faulted, seeded=notes_digest(template.at_one / "app.db"))
    record = Record(
        kind="disk",
        operation="up",
        fault="full disk",
        case=f"up/free={free}",
        detail=(f"free before up: {reached} bytes", faulted.summary()),
        reproduce=f"python -m tests.faults disk {free}",
        verdict=verdict,
    )
    save(record)
    return record


def _run(root: Path, args: Sequence[str]) -> Run:
    return run_cli(root, args)


# --- part 3: power loss ------------------------------------------------------------------

POWER_OPERATIONS = ("up", "backup-restore")
POWER_POINTS = 45  # crash points per operation in the full run (spread over all of them)
POWER_VARIANTS = (("lost", "posix"), ("lost", "ordered"), ("random", "ordered"))


class Recordings:
    """The traced run of each operation the power-loss model replays (once per session)."""

    def __init__(self, template: Template, work: Path) -> None:
        self.template = template
        self.work = work
        self._done: dict[str, powerloss.Recording] = {}
        self._lock = threading.Lock()

    def get(self, op_name: str) -> powerloss.Recording:
        """The recording of `op_name` (made on first use)."""
        with self._lock:
            if op_name not in self._done:
                op = operation(op_name)
                root = copy_world(op.source(self.template), self.work / f"record-{op_name}")
                recording = powerloss.record(root, op.args(self.template), self.work)
                assert recording.run.returncode == 0, recording.run.summary()
                self._done[op_name] = recording
            return self._done[op_name]


def power_states(recordings: Recordings, op_name: str) -> list[tuple[str, int, str, str, int]]:
    """(operation, point, choice, model, seed) to materialise: all variants or a sample."""
    points = powerloss.crash_points(recordings.get(op_name))
    states = [
        (op_name, point, choice, model, i)
        for i, point in enumerate(spread(points, POWER_POINTS))
        for choice, model in POWER_VARIANTS
    ]
    if full():
        return states
    if op_name != "up":
        return []
    rng = random.Random(f"{SEED}-power")
    picked = [rng.choice([s for s in states if s[2:4] == variant]) for variant in POWER_VARIANTS]
    return sorted({*picked, rng.choice(states)})


def run_power_case(
    recordings: Recordings, work: Path, op_name: str, point: int, choice: str, model: str, seed: int
) -> Record:
    """Materialise one crash state of `op_name`'s run, then judge the next commands on it."""
    recording = recordings.get(op_name)
    state = powerloss.State(point, choice, model, seed)
    root = work / f"power-{op_name}-{state.name.replace('/', '-')}"
    powerloss.materialise(recording, state, root)
    try:
        verdict = judge(root, None, seeded=notes_digest(recordings.template.at_one / "app.db"))
        record = Record(
            kind="power",
            operation=op_name,
            fault=f"power loss {choice}/{model}",
            case=f"{op_name}/{state.name}",
            detail=(powerloss.describe(recording, state),),
            reproduce=f"python -m tests.faults power {op_name} {point} {choice} {model} {seed}",
            verdict=verdict,
        )
        if record.failed:
            record = _keep_state(recording, state, root, record)
        save(record)
        return record
    finally:
        _discard(root)


def _keep_state(
    recording: powerloss.Recording, state: powerloss.State, root: Path, record: Record
) -> Record:
    """Keep a failing case's crash state (materialised again: the judged one was changed by
    the commands) and the run's operations beside it. A recording is made once per session
    and can differ between sessions (timing), so the case's name alone may not reproduce it."""
    kept = root.with_name(root.name + ".state")
    powerloss.materialise(recording, state, kept)
    ops = "\n".join(f"{i}: {label}" for i, label in enumerate(recording.labels))
    (kept.parent / (kept.name + ".ops.txt")).write_text(ops + "\n", encoding="utf-8")
    return attrs.evolve(record, detail=(*record.detail, f"crash state kept in {kept}"))

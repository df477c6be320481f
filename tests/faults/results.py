"""Case records: one JSON line per case in the file SCHEMALOG_FAULTS_RESULTS names, and the
summary table the report shows (`python -m tests.faults summary FILE`)."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import attrs

from tests.faults.verdict import SEVERITY, Verdict

ENV = "SCHEMALOG_FAULTS_RESULTS"
_LOCK = threading.Lock()
ACCEPTED = ("ok", "ok-after-hint")
# Flags that fail a case even when the database ended healthy.
FAILING_FLAGS = ("exit4", "unexpected")


@attrs.frozen
class Record:
    """One case: what was faulted, how to reproduce it, and the verdict."""

    kind: str  # syscall | disk | power
    operation: str
    fault: str  # the row of the table: e.g. "write/EIO", "free 8192", "crash unsynced=lost"
    case: str  # the case's own name
    detail: tuple[str, ...]  # what fired / what the state was
    reproduce: str
    verdict: Verdict

    @property
    def failed(self) -> bool:
        """True when the case broke an invariant (or raised a flag that is a finding)."""
        v = self.verdict
        return v.outcome not in ACCEPTED or any(f in v.flags for f in FAILING_FLAGS)

    def line(self) -> str:
        """One line for an assertion message."""
        v = self.verdict
        first = v.messages[0] if v.messages else (v.problems[0] if v.problems else "")
        return f"{self.case}: {v.outcome} {list(v.flags)} {first[:220]}"


def save(record: Record) -> None:
    """Append `record` to the results file, when one is configured."""
    target = os.environ.get(ENV)
    if not target:
        return
    doc = attrs.asdict(record)
    with _LOCK, open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, sort_keys=True) + "\n")


def failures(records: list[Record]) -> str:
    """An assertion message listing the failed cases (empty when none failed)."""
    bad = [r for r in records if r.failed]
    if not bad:
        return ""
    head = f"{len(bad)} of {len(records)} cases broke invariant 8:"
    return "\n".join([head, *(f"  {r.line()}" for r in bad[:40])])


def load(path: Path) -> list[dict[str, Any]]:
    """The records of a results file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def summary(path: Path) -> str:
    """A markdown table: fault class x cases x outcome counts, then flag counts."""
    docs = load(path)
    rows: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    flags: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for doc in docs:
        key = (doc["kind"], doc["fault"])
        rows[key][doc["verdict"]["outcome"]] += 1
        for flag in doc["verdict"]["flags"]:
            flags[key][flag] += 1
    outcomes = list(reversed(SEVERITY))
    flag_names = [
        "exit4",
        "unexpected",
        "hint",
        "restore-advised",
        "blames-migration",
        "diverged-after-fault",
    ]
    head = ["kind", "fault", "cases", *outcomes, *(f"flag:{f}" for f in flag_names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total: Counter[str] = Counter()
    total_flags: Counter[str] = Counter()
    for key in sorted(rows):
        counts = rows[key]
        total.update(counts)
        total_flags.update(flags[key])
        cells = [*key, str(sum(counts.values()))]
        cells += [str(counts[o]) for o in outcomes] + [str(flags[key][f]) for f in flag_names]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**", "", str(sum(total.values()))]
    cells += [str(total[o]) for o in outcomes] + [str(total_flags[f]) for f in flag_names]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

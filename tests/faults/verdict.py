"""The one invariant check every fault case ends with (DESIGN.md invariants 2, 3, 8, 9).

After the fault, the campaign acts as an unattended application would: `status --json`,
then `recover`, then `up`, following every "next: run X" hint once (and checking that it
works), then a last `status --json`. It then reads the files directly: both journals (the
`schemalog_journal` table through sqlite3, the JSONL through json), `PRAGMA user_version`,
the seeded rows, and the lock (an flock probe). The case is classified as one outcome, the
worst that applies, in this order:

lost-rows > journals-diverged > wedged > unexpected-error > ok-after-hint > ok

Independent flags record what else was seen: an exit 4 anywhere (a finding: no fault in
this campaign is tampering), a "next:" hint, a hint that advises a restore, a hint that
blames a migration (every migration of the fixture is correct), `unexpected`.
"""

from __future__ import annotations

import fcntl
import json
import re
import shlex
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs

from tests.faults.world import DB, HEAD, JSONL, LOCK, Run, notes_digest, run_cli

OUTCOMES = ("ok", "ok-after-hint", "wedged", "unexpected-error", "journals-diverged", "lost-rows")
# Worst first: the outcome of a case is the first of these that applies.
SEVERITY = ("lost-rows", "journals-diverged", "wedged", "unexpected-error", "ok-after-hint", "ok")

_HINT = re.compile(r"next: (.*)$", re.MULTILINE)
_COMMAND = re.compile(r"`schemalog ([^`]+)`")
# Words in a hinted command that a human must fill in.
_PLACEHOLDERS = {"ID", "V", "VERSION", "N", "SEQ", "PATH", "FILE", "TEXT", "NAME"}


@attrs.frozen
class Verdict:
    """What one case led to."""

    outcome: str
    flags: tuple[str, ...]
    problems: tuple[str, ...]
    runs: tuple[str, ...]  # each run's summary line, in order
    hints: tuple[str, ...]
    messages: tuple[str, ...]  # every distinct `error:` line seen, in order

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


# --- reading the files -----------------------------------------------------------------


def table_chain(db: Path) -> list[tuple[int, str]] | None:
    """(seq, hash) of every row of `schemalog_journal`; None when it cannot be read."""
    try:
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            return conn.execute("SELECT seq, hash FROM schemalog_journal ORDER BY seq").fetchall()
    except sqlite3.Error:
        return None


def jsonl_chain(jsonl: Path) -> list[tuple[int, str]] | None:
    """(seq, hash) of every line of the JSONL; a line that is not JSON counts as (-1, text)."""
    if not jsonl.exists():
        return []
    chain: list[tuple[int, str]] = []
    try:
        data = jsonl.read_bytes()
    except OSError:
        return None
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            event = json.loads(line)
            chain.append((int(event["seq"]), str(event["hash"])))
        except (ValueError, KeyError, TypeError):
            chain.append((-1, line[:60].decode(errors="replace")))
    return chain


def user_version(db: Path) -> int | None:
    """`PRAGMA user_version`, or None when the database cannot be read."""
    try:
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error:
        return None


def lock_free(lock: Path) -> bool:
    """True when nobody holds the flock on the lock file (or it does not exist)."""
    if not lock.exists():
        return True
    with open(lock, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def journals_match(root: Path) -> tuple[bool, str]:
    """(both journals hold the same (seq, hash) list, a description of the difference)."""
    table, jsonl = table_chain(root / DB), jsonl_chain(root / JSONL)
    if table is None or jsonl is None:
        return False, f"unreadable journal (table {table is not None}, jsonl {jsonl is not None})"
    if table == jsonl:
        return True, ""
    for i, (a, b) in enumerate(zip(table, jsonl, strict=False)):
        if a != b:
            return False, f"differ at position {i}: table {a} vs jsonl {b}"
    return False, f"table has {len(table)} events, jsonl {len(jsonl)}"


# --- running the next commands like an unattended application ----------------------------


class _Session:
    """The commands run after the fault, with what they printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: list[Run] = []
        self.problems: list[str] = []
        self.hints: list[str] = []
        self.wedged = False

    def run(self, args: Sequence[str]) -> Run:
        result = run_cli(self.root, args)
        self.runs.append(result)
        return result

    def step(self, args: Sequence[str]) -> Run:
        """Run `args`; on failure run the command its hint names (if any), then `args` again."""
        result = self.run(args)
        if result.returncode == 0:
            return result
        self.follow(result)
        if self.wedged:
            return result
        again = self.run(args)
        if again.returncode != 0:
            self.problems.append(f"after its hint, {again.summary()}")
        return again

    def follow(self, result: Run) -> None:
        """Record the hints `result` printed and run the first `schemalog X` one names."""
        for hint in _HINT.findall(result.stderr):
            self.hints.append(hint.strip())
            match = _COMMAND.search(hint)
            if match is None:
                continue  # "retry", "free disk space, then retry": the caller retries
            args = shlex.split(match.group(1))
            if any(word in _PLACEHOLDERS or word.startswith("<") for word in args):
                self.wedged = True
                self.problems.append(f"hint needs a human: {hint.strip()}")
                return
            hinted = self.run(args)
            if hinted.returncode != 0:
                self.problems.append(f"hinted command failed: {hinted.summary()}")
            return


def judge(
    root: Path,
    faulted: Run | None,
    *,
    seeded: tuple[int, str] | None,
    rows_may_go: bool = False,
) -> Verdict:
    """Run the next commands on the world at `root` after a fault and classify the outcome.

    `faulted` is the command that suffered the fault (None for a power-loss state, where the
    faulted process never finished); `seeded` is the (count, digest) of the seeded rows. `rows_may_go` is True for `down --to 0`: the seeded
    rows are expected gone when the database reached version 0 before `up` ran again.
    """
    s = _Session(root)
    diverged_at_once = not journals_match(root)[0]
    if faulted is not None:
        s.runs.append(faulted)
        s.follow(faulted)  # "next: run X": run X as told
    s.run(["status", "--json"])
    s.step(["recover"])
    after_recover = user_version(root / DB)
    up = s.step(["up"])
    final = s.run(["status", "--json"])

    problems = list(s.problems)
    status: dict[str, Any] = {}
    try:
        status = json.loads(final.stdout) if final.returncode == 0 else {}
    except ValueError:
        problems.append("status --json printed no JSON")
    version = user_version(root / DB)
    matched, difference = journals_match(root)
    wedged = s.wedged or up.returncode != 0
    if up.returncode != 0:
        problems.append(f"last `up`: {up.summary()}")
    if final.returncode != 0:
        wedged = True
        problems.append(f"last status: {final.summary()}")
    elif status:
        checks = {
            "version == user_version": status.get("version") == status.get("user_version"),
            "user_version == head": version == HEAD,
            "needs_recovery false": status.get("needs_recovery") is False,
            "no pending": status.get("pending") == [],
            "lock not held": not (status.get("lock") or {}).get("held"),
            "journal consistent": (status.get("journal") or {}).get("consistent") is True,
        }
        for name, passed in checks.items():
            if not passed:
                problems.append(f"status: not {name}")
                if name != "journal consistent":
                    wedged = True
    if not lock_free(root / LOCK):
        wedged = True
        problems.append("the lock is still held")
    if not matched:
        problems.append(f"journals: {difference}")

    lost = False
    digest = notes_digest(root / DB)
    rows_expected = not (rows_may_go and after_recover == 0)
    if rows_expected and digest != seeded:
        lost = True
        problems.append(f"seeded rows: {digest} instead of {seeded}")

    text = "\n".join(r.stdout + r.stderr for r in s.runs)
    flags = []
    if any(r.returncode == 4 for r in s.runs):
        flags.append("exit4")
    if s.hints:
        flags.append("hint")
    if any("restore" in h for h in s.hints):
        flags.append("restore-advised")
    if any(h.startswith(("fix statement", "fix the migration", "fix `down`")) for h in s.hints):
        flags.append("blames-migration")  # every migration of the fixture is correct
    if "unexpected " in text:
        flags.append("unexpected")
    if diverged_at_once:
        flags.append("diverged-after-fault")
    if any(r.returncode == -9 for r in s.runs):
        flags.append("timeout")
        wedged = True

    if lost:
        outcome = "lost-rows"
    elif not matched:
        outcome = "journals-diverged"
    elif wedged:
        outcome = "wedged"
    elif "unexpected" in flags:
        outcome = "unexpected-error"
    elif s.hints or "exit4" in flags:
        outcome = "ok-after-hint"
    else:
        outcome = "ok"
    messages: list[str] = []
    for r in s.runs:
        for line in r.stderr.splitlines():
            if line.startswith("error:") and line not in messages:
                messages.append(line)
    return Verdict(
        outcome=outcome,
        flags=tuple(flags),
        problems=tuple(problems),
        runs=tuple(r.summary() for r in s.runs),
        hints=tuple(s.hints),
        messages=tuple(messages),
    )

"""Lint's rules (one stable code each), its findings, and the allow comments that silence them.

Codes are documented in `schemalog help lint` with an example and a fix; they never change meaning.
A migration file silences a rule for itself with a comment naming the code and a reason:

    -- schemalog: allow SL101 the archive table is copied to cold storage first
    # schemalog: allow SL401 data migration: there is nothing to undo

An allow comment without a reason silences nothing (finding SL003 says so).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from schemalog.engine.core.lint.statements import Statement
    from schemalog.engine.files.migration import Migration

__all__ = ["RULES", "Allow", "Finding", "Rule", "allows_in", "finding", "statement_finding"]


@attrs.frozen
class Rule:
    """A lint rule: its code, default severity, and a short name."""

    code: str
    severity: str  # "error" | "warning"
    name: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("SL001", "error", "fails on the scratch copy"),
        Rule("SL003", "warning", "allow comment without a reason"),
        Rule("SL101", "error", "DROP TABLE of a table that holds rows"),
        Rule("SL102", "error", "DROP COLUMN of a column that holds values"),
        Rule("SL201", "error", "unique index over duplicate values"),
        Rule("SL202", "error", "ADD COLUMN NOT NULL without a default"),
        Rule(
            "SL301", "error", "table rebuild with foreign keys on while other tables reference it"
        ),
        Rule("SL302", "error", "a view or trigger that the rebuild or rename breaks"),
        Rule("SL303", "warning", "PRAGMA legacy_alter_table"),
        Rule("SL401", "warning", "no down"),
        Rule("SL402", "error", "down does not restore the schema"),
        Rule("SL501", "error", "transaction control inside a transactional migration"),
        Rule("SL502", "error", "VACUUM inside a transaction"),
        Rule("SL503", "warning", "PRAGMA foreign_keys inside a transaction"),
        Rule("SL601", "warning", "non-deterministic value written into rows"),
        Rule("SL701", "warning", "long rewrite"),
    )
}


@attrs.frozen
class Finding:
    """One problem: `{code, severity, version, file, statement, message}` (plus `position`)."""

    code: str
    severity: str
    version: int
    file: str
    statement: str | None
    message: str
    position: int | None = None


def finding(
    code: str,
    version: int,
    file: str,
    message: str,
    *,
    statement: str | None = None,
    position: int | None = None,
    severity: str | None = None,
) -> Finding:
    """A finding of rule `code` (its default severity unless `severity` is given)."""
    return Finding(
        code=code,
        severity=severity or RULES[code].severity,
        version=version,
        file=file,
        statement=_clip(statement),
        message=message,
        position=position,
    )


def statement_finding(
    code: str,
    migration: Migration,
    stmt: Statement,
    step: str,
    message: str,
    severity: str | None = None,
) -> Finding:
    """A finding about statement `stmt` of `migration`'s `step` (`up` or `down`)."""
    return finding(
        code,
        migration.version,
        migration.filename,
        f"{step} statement {stmt.position}: {message}",
        statement=stmt.sql,
        position=stmt.position,
        severity=severity,
    )


def _clip(text: str | None, limit: int = 200) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@attrs.frozen
class Allow:
    """An allow comment: the codes it silences, its reason, and its line."""

    codes: tuple[str, ...]
    reason: str
    line: int


_ALLOW = re.compile(
    r"(?:--|#)\s*schemalog:\s*allow\s+(SL\d{3}(?:\s*,\s*SL\d{3})*)(?:\s+(.*?))?\s*$",
    re.IGNORECASE,
)


def allows_in(text: str) -> list[Allow]:
    """Every allow comment in a migration file's text, in order. Pure."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ALLOW.search(line)
        if match is not None:
            codes = tuple(c.strip().upper() for c in match[1].split(","))
            found.append(Allow(codes, (match[2] or "").strip(), number))
    return found

"""Planning: which migrations to apply or revert, as data. Pure, but for loading the code
of the migrations it plans (`Registry.migration`: a `.py` file's top level runs then, once).

The executor and `--dry-run` consume the same `Plan`, so a dry run shows
exactly the statements a real run executes.
"""

from __future__ import annotations

import re

import attrs

from schemalog.engine.base.errors import MigrationFileError, NotReversible, UsageError
from schemalog.engine.files.migration import Migration
from schemalog.engine.files.registry import Registry
from schemalog.engine.files.sqlsplit import split_statements
from schemalog.journal.replay import State

__all__ = ["Plan", "Step", "plan_down", "plan_up"]

# Statements that would end or nest the engine's own transaction.
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@attrs.frozen
class Step:
    """One migration to apply (`up`) or revert (`down`)."""

    migration: Migration
    direction: str
    statements: tuple[str, ...] | None  # None: a Python function
    target_version: int  # user_version after the step
    expect_fingerprint: str | None = None  # down: the schema recorded before `up` ran
    expect_changes: object = attrs.field(default=None, eq=False)  # down: `up`'s schema_changes

    @property
    def version(self) -> int:
        """The migration's version."""
        return self.migration.version

    @property
    def transactional(self) -> bool:
        """Whether the step runs inside a transaction."""
        return self.migration.transactional

    @property
    def foreign_keys(self) -> bool:
        """Whether foreign keys stay enforced during the step."""
        return self.migration.foreign_keys


@attrs.frozen
class Plan:
    """The steps that take the database from `from_version` to `to_version`."""

    direction: str
    from_version: int
    to_version: int
    steps: tuple[Step, ...]

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not self.steps


def _statements(migration: Migration, code: object) -> tuple[str, ...] | None:
    if callable(code):
        return None
    statements = tuple(split_statements(str(code)))
    if migration.transactional:
        for stmt in statements:
            if _TX_CONTROL.match(stmt):
                msg = (
                    f"{migration.filename}: statement {stmt.split()[0].upper()!r} controls the "
                    "transaction, which schemalog owns"
                )
                raise MigrationFileError(
                    msg,
                    path=str(migration.path),
                    hint="remove it (schemalog runs every migration inside a transaction it owns)",
                )
    return statements


def plan_up(registry: Registry, state: State, target: int | None = None) -> Plan:
    """Steps applying every migration above the current version up to `target` (default head).

    Raises UsageError when `target` is above the head or below the current version, and
    MigrationFileError naming a planned file whose code is invalid.
    """
    current = state.version
    head = registry.head
    goal = head if target is None else target
    if goal > head:
        msg = f"target version {goal} is above the newest migration ({head})"
        raise UsageError(msg, hint=f"use --to {head} or add the migration files")
    if goal < current:
        msg = f"target version {goal} is below the current version {current}"
        raise UsageError(msg, hint=f"use `schemalog down --to {goal}` to revert")
    steps = []
    for version in range(current + 1, goal + 1):
        mig = registry.migration(version)  # the registry is gap-free 1..head
        steps.append(Step(mig, "up", _statements(mig, mig.up), version))
    return Plan("up", current, goal, tuple(steps))


def plan_down(registry: Registry, state: State, target: int) -> Plan:
    """Steps reverting applied migrations newest first down to `target`.

    Raises UsageError for a target outside 0..current, and NotReversible naming
    every migration on the way that has no `down` (before anything runs); MigrationFileError
    naming a planned file whose code is invalid.
    """
    current = state.version
    if target < 0 or target > current:
        msg = f"target version {target} is not between 0 and the current version {current}"
        raise UsageError(msg, hint="pick a version from `schemalog status`")
    applied = state.applied_by_version
    steps, missing = [], []
    for version in range(current, target, -1):
        mig = registry.migration(version) if registry.get(version) is not None else None
        if mig is None or mig.down is None:
            missing.append(mig.filename if mig else f"version {version}")
            continue
        record = applied.get(version)
        expect = record.fingerprint_before if record else None
        changes = record.schema_changes if record else None
        steps.append(Step(mig, "down", _statements(mig, mig.down), version - 1, expect, changes))
    if missing:
        msg = f"cannot revert to {target}: no `down` in {', '.join(missing)}"
        raise NotReversible(msg, hint="write a new forward migration instead, or restore a backup")
    return Plan("down", current, target, tuple(steps))

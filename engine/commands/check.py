"""`check`: test every migration on a scratch database, never touching the real one.

For each migration under test, on a scratch database: `up` to it (which runs its verify
queries), check the scratch database (integrity, foreign keys, `user_version`), `down` one
version (when it has a `down`), compare the schema fingerprint with the one before `up`,
and `up` again. Every step goes through the same `upgrade`/`downgrade` as a real run, on one
context (whose memo carries the journal from step to step) and one registry loaded once, so
each migration costs the same however many came before. Before anything runs, the files are
checked against the copied journal exactly as `up` checks them (an applied file edited or
deleted is refused the same way). Two sources of scratch databases:

- a copy of the configured database (taken with SQLite's backup API, together with a copy
  of its JSONL journal), testing the migrations still pending there;
- with `from_scratch`, an empty database, testing every migration from version 1.

The scratch files live in a temporary directory that is removed afterwards. Backup
retention is switched off in the scratch runs on a copy: the copied journal names the real
database's backups, and retention must never delete those. From an empty database every
backup is the scratch runs' own, and only the newest two are kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import attrs

from schemalog.engine.base.connection import integrity_problems, open_database
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import CheckFailed, NeedsHuman, SchemalogError, UsageError
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands.inspect import replay
from schemalog.engine.commands.migrate import downgrade, upgrade
from schemalog.engine.core.schema import Schema, read_schema
from schemalog.engine.core.schema_diff import diff_schemas
from schemalog.engine.files.migration import Migration
from schemalog.engine.files.registry import Registry, check_against_journal, load_registry

__all__ = [
    "CheckReport",
    "MigrationCheck",
    "check",
    "check_copy",
    "check_from_empty",
    "check_one",
    "copy_database",
    "scratch_settings",
]

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@attrs.frozen
class MigrationCheck:
    """The outcome of testing one migration: `ok`, `failed` (with the reason) or `skipped`."""

    version: int
    filename: str
    outcome: str
    detail: str = ""
    steps: tuple[str, ...] = ()  # what was done, in order: up, verify, down, schema, up again


@attrs.frozen
class CheckReport:
    """The results of one scratch database (a copy of the real one, or an empty one)."""

    source: str  # "copy" or "empty"
    description: str
    start_version: int
    results: tuple[MigrationCheck, ...]

    @property
    def ok(self) -> bool:
        """Whether no migration failed."""
        return all(r.outcome != FAILED for r in self.results)

    @property
    def failed(self) -> tuple[MigrationCheck, ...]:
        """The migrations that failed."""
        return tuple(r for r in self.results if r.outcome == FAILED)

    def text(self) -> str:
        """The report as plain text, one line per migration."""
        lines = [f"{self.description} (version {self.start_version}):"]
        if not self.results:
            lines.append("  nothing to test")
        for r in self.results:
            steps = ", ".join(r.steps)
            detail = f": {r.detail}" if r.detail else ""
            done = f" [{steps}]" if steps else ""
            lines.append(f"  {r.outcome:<7} {r.filename}{done}{detail}")
        return "\n".join(lines)


def scratch_settings(settings: Settings, workdir: Path, *, own_backups: bool = False) -> Settings:
    """`settings` pointed at a scratch database in `workdir`, with retention switched off
    (with `own_backups`, when every backup its journal knows is the scratch's own: keep 2)."""
    return attrs.evolve(
        settings,
        database=workdir / "scratch.db",
        backup_dir=workdir / "backups",
        retention_count=2 if own_backups else None,
        retention_bytes=None,
        lock_timeout=0.0,
    )


def check(
    settings: Settings,
    *,
    from_scratch: bool = False,
    workdir: Path | None = None,
    on_result: Callable[[MigrationCheck], None] | None = None,
    on_pass: Callable[[str], None] | None = None,
) -> list[CheckReport]:
    """Test migrations on scratch databases; the real database is only read.

    The pending migrations are tested on a copy of the configured database when it exists
    (`check_copy`); every migration is tested from an empty database (`check_from_empty`)
    with `from_scratch` or when there is no database to copy. `on_pass(description)` is
    called before each pass and `on_result(result)` after each migration. Returns the reports; raises CheckFailed (with `reports` attached)
    when a migration failed, and what `check_copy` raises.
    """
    reports: list[CheckReport] = []
    if settings.database is not None and settings.database.exists():
        if on_pass is not None:
            on_pass(f"pending migrations, on a copy of {settings.database}:")
        reports.append(check_copy(settings, workdir=workdir, on_result=on_result))
    if from_scratch or not reports:
        if on_pass is not None:
            on_pass("every migration, from an empty database:")
        reports.append(check_from_empty(settings, workdir=workdir, on_result=on_result))
    failed = [r for rep in reports for r in rep.failed]
    if failed:
        error = CheckFailed(
            f"check: {len(failed)} migration(s) failed: "
            + "; ".join(f"{r.filename}: {r.detail}" for r in failed),
            state="the real database was not touched",
            hint="fix the migration and re-run",
        )
        error.reports = reports  # type: ignore[attr-defined]
        raise error
    return reports


def check_copy(
    settings: Settings,
    *,
    workdir: Path | None = None,
    on_result: Callable[[MigrationCheck], None] | None = None,
) -> CheckReport:
    """Test the migrations pending on a copy of `settings.database` (which must exist).

    The copy (database via SQLite's backup API, plus its JSONL journal) goes to a
    temporary directory under `workdir` (default: the system's) that is removed
    afterwards. `on_result(result)` is called after each migration.

    Raises the UsageError subclasses of the migration files (exit 2: a malformed file, a
    gap, an applied file edited) before anything runs, and JournalError/NeedsHuman when
    the real database's journal cannot be trusted. A failing migration is not raised: it
    is reported (`CheckReport.ok` is False).
    """
    registry = _loaded(settings)  # file errors before anything runs
    source = settings.paths.database
    return _check_pass(settings, registry, source, workdir, on_result)


def check_from_empty(
    settings: Settings,
    *,
    workdir: Path | None = None,
    on_result: Callable[[MigrationCheck], None] | None = None,
) -> CheckReport:
    """Test every migration of `settings.migrations` from an empty scratch database.

    Like `check_copy`, without reading any database.
    """
    registry = _loaded(settings)
    return _check_pass(settings, registry, None, workdir, on_result)


def _loaded(settings: Settings) -> Registry:
    """The registry with every migration's code loaded (a file error before anything runs)."""
    registry = load_registry(settings.migrations)
    for entry in registry:
        registry.migration(entry.version)
    return registry


def _check_pass(
    settings: Settings,
    registry: Registry,
    source: Path | None,
    workdir: Path | None,
    on_result: Callable[[MigrationCheck], None] | None,
) -> CheckReport:
    with tempfile.TemporaryDirectory(prefix="schemalog-check-", dir=workdir) as tmp:
        scratch = scratch_settings(settings, Path(tmp), own_backups=source is None)
        db = scratch.database
        assert db is not None
        if source is not None:
            copy_database(source, settings.paths.jsonl, db, scratch.paths.jsonl)
            description = f"on a copy of {source}"
        else:
            description = "from an empty database"
        ctx = Context(scratch)
        start = 0
        if db.exists():
            state = replay(ctx)
            check_against_journal(registry, state.applied_by_version, state.version)
            start = state.version
        results: list[MigrationCheck] = []
        broken: str | None = None
        for mig in registry:
            if mig.version <= start:
                continue
            if broken is not None:
                result = MigrationCheck(
                    mig.version, mig.filename, SKIPPED, f"after the failure of {broken}"
                )
            else:
                result = check_one(ctx, db, registry.migration(mig.version), registry)
                if result.outcome == FAILED:
                    broken = mig.filename
            results.append(result)
            if on_result is not None:
                on_result(result)
        return CheckReport(
            source="copy" if source is not None else "empty",
            description=description,
            start_version=start,
            results=tuple(results),
        )


def check_one(
    ctx: Context, db: Path, mig: Migration, registry: Registry | None = None
) -> MigrationCheck:
    """Test `mig` on the scratch database `db` (at the version before it): up, verify, down,
    the same schema as before up, up again (with `registry`, the files already loaded). Raises
    the UsageError of a migration file; any other failure is the result's `detail` (outcome
    `failed`)."""
    steps: list[str] = []
    phase = "up"
    try:
        before = _schema(db)
        upgrade(ctx, mig.version, registry=registry)
        steps.append("up")
        phase = "verify"
        problem = _scratch_problem(ctx, db, mig.version)
        if problem is not None:
            return MigrationCheck(
                mig.version, mig.filename, FAILED, f"verify: {problem}", tuple(steps)
            )
        steps.append("verify")
        if mig.down is None:
            return MigrationCheck(
                mig.version, mig.filename, OK, "no down: round trip skipped", tuple(steps)
            )
        phase = "down"
        downgrade(ctx, mig.version - 1, registry=registry)
        steps.append("down")
        phase = "schema"
        after = _schema(db)
        if after.fingerprint != before.fingerprint:
            return MigrationCheck(
                mig.version,
                mig.filename,
                FAILED,
                "schema: after down the schema differs from the one before up: "
                + diff_schemas(before, after).text(),
                tuple(steps),
            )
        steps.append("schema")
        phase = "up again"
        upgrade(ctx, mig.version, registry=registry)
        steps.append("up again")
    except UsageError:
        raise
    except SchemalogError as exc:
        return MigrationCheck(
            mig.version, mig.filename, FAILED, f"{phase}: {exc.what}", tuple(steps)
        )
    return MigrationCheck(mig.version, mig.filename, OK, "", tuple(steps))


def _scratch_problem(ctx: Context, db: Path, version: int) -> str | None:
    """What is wrong with the scratch database after `up` to `version`, or None: integrity,
    foreign keys, `user_version`. Reads only."""
    with closing(open_database(db, mode="ro", functions=ctx.functions)) as conn:
        problems = integrity_problems(conn, "full", limit=3)
        if problems:
            return "integrity: " + "; ".join(problems)
        fk = conn.execute("PRAGMA foreign_key_check").fetchmany(1)
        if fk:
            return f"foreign keys: a violation in table {fk[0][0]}"
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if user_version != version:
            return f"user_version is {user_version}, expected {version}"
    return None


def _schema(db: Path) -> Schema:
    """The schema of `db` (the empty one when it does not exist yet). Reads only."""
    if not db.exists():
        return Schema()
    with closing(open_database(db, mode="ro")) as conn:
        return read_schema(conn)


def copy_database(source: Path, source_jsonl: Path, db: Path, jsonl: Path) -> None:
    """Copy `source` (SQLite's backup API, read-only) and its JSONL journal to scratch paths."""
    src = open_database(source, mode="ro")
    dst = open_database(db, mode="rwc")
    try:
        src.backup(dst)
    except sqlite3.DatabaseError as exc:
        msg = f"cannot copy database {source} for the check: {exc}"
        raise NeedsHuman(msg, hint="run `schemalog verify` on it") from exc
    finally:
        dst.close()
        src.close()
    if source_jsonl.exists():
        shutil.copyfile(source_jsonl, jsonl)

"""Helpers for testing migrations from your own test suite (pytest or any other).

    from schemalog.testing import assert_migrations_roundtrip, assert_upgrade_from_scratch

    def test_migrations():
        assert_migrations_roundtrip("migrations")           # each one: up, verify, down, up
        assert_upgrade_from_scratch("migrations")           # all of them in one run

    def test_against_a_production_copy():
        assert_migrations_roundtrip("migrations", database="fixtures/prod-sample.db")

    def test_schema_file_is_current():
        assert_schema_matches("migrations", "schema.sql")   # written by `schemalog schema --output`

Every helper works on scratch databases in a temporary directory: a database you pass is
only read (copied with SQLite's backup API). Failures raise AssertionError carrying the
per-migration report; a broken migration file raises its MigrationFileError/RegistryError.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import SchemalogError, UsageError
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands.check import (
    CheckReport,
    check_copy,
    check_from_empty,
    copy_database,
    scratch_settings,
)
from schemalog.engine.commands.schema import built_schema, read_schema_file
from schemalog.engine.core.schema import Schema
from schemalog.engine.core.schema_diff import diff_schemas
from schemalog.engine.migrator import Migrator
from schemalog.journal.replay import State

__all__ = [
    "assert_migrations_roundtrip",
    "assert_schema_matches",
    "assert_upgrade_from_scratch",
    "scratch_migrator",
]


def _settings(migrations_dir: str | Path, database: str | Path | None, **settings: Any) -> Settings:
    return Settings(
        migrations=Path(migrations_dir).resolve(),
        database=Path(database).resolve() if database is not None else None,
        **settings,
    )


def assert_migrations_roundtrip(
    migrations_dir: str | Path, database: str | Path | None = None, **settings: Any
) -> CheckReport:
    """Assert that every migration survives up, verify, down, same schema, up again.

    Without `database` every migration is tested from an empty database; with it, the
    migrations still pending on a copy of that database are (it is only read). Extra
    keyword arguments are settings (e.g. `transaction="step"`). Returns the report;
    raises AssertionError with the report when a migration failed.
    """
    cfg = _settings(migrations_dir, database, **settings)
    report = check_copy(cfg) if database is not None else check_from_empty(cfg)
    if not report.ok:
        raise AssertionError("migration check failed\n" + report.text())
    return report


def assert_upgrade_from_scratch(
    migrations_dir: str | Path, *, to: int | None = None, **settings: Any
) -> State:
    """Assert that all migrations (or those up to `to`) apply to an empty database in one run.

    After the run, `verify` must pass (journals, integrity, foreign keys, every verify
    query). Returns the replayed journal state; raises AssertionError naming the failure.
    Use `scratch_migrator` to keep working with the upgraded database.
    """
    with scratch_migrator(migrations_dir, **settings) as migrator:
        try:
            migrator.upgrade(to)
            migrator.verify()
            return migrator.replay()
        except SchemalogError as exc:
            if isinstance(exc, UsageError):
                raise
            raise AssertionError(f"upgrade from scratch failed: {exc.message}") from exc


def assert_schema_matches(
    migrations_dir: str | Path, schema_file: str | Path, **settings: Any
) -> Schema:
    """Assert that the schema after the last migration equals the committed `schema_file`.

    The migrations run on an empty scratch database (extra keyword arguments are settings,
    e.g. `functions="myapp.db:register_sql"`); `schema_file` is the canonical text that
    `schemalog schema --output FILE` writes. Returns the built schema; raises AssertionError
    listing every object that differs (added, removed, changed: columns, constraints,
    definitions), and UsageError when the file is missing or malformed.
    """
    expected = read_schema_file(Path(schema_file))
    ctx = Context(_settings(migrations_dir, None, **settings))
    try:
        built = built_schema(ctx)
    except SchemalogError as exc:
        if isinstance(exc, UsageError):
            raise
        raise AssertionError(f"the migrations failed on an empty database: {exc.message}") from exc
    found = diff_schemas(expected, built)
    if found:
        lines = "\n".join(f"  {line}" for line in found.lines())
        raise AssertionError(
            f"the schema after the last migration differs from {schema_file} "
            f"({len(found.objects)} object(s); expected = the file, actual = the migrations):\n"
            f"{lines}\nif the change is intended: schemalog schema --output {schema_file}"
        )
    return built


@contextlib.contextmanager
def scratch_migrator(
    migrations_dir: str | Path, *, database: str | Path | None = None, **settings: Any
) -> Iterator[Migrator]:
    """A Migrator on a scratch database (empty, or a copy of `database`), removed afterwards.

    Use it to test data migrations: `migrator.upgrade(1)`, insert rows through
    `sqlite3.connect(migrator.paths.database)`, `migrator.upgrade()`, then assert on the rows.
    """
    cfg = _settings(migrations_dir, database, **settings)
    with tempfile.TemporaryDirectory(prefix="schemalog-test-") as tmp:
        scratch = scratch_settings(cfg, Path(tmp))
        if database is not None:
            paths = scratch.paths
            copy_database(cfg.paths.database, cfg.paths.jsonl, paths.database, paths.jsonl)
        yield Migrator(scratch)

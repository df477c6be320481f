"""The pytest plugin: ready-made tests of an application's migrations, and a fixture.

Registered through the `pytest11` entry point, so it loads wherever schemalog is installed,
and does nothing until a suite opts in through its pytest ini (`pytest.ini`, `[tool.pytest.
ini_options]` in pyproject.toml, ...), paths relative to the ini file:

    [pytest]
    schemalog_migrations = migrations
    schemalog_schema_file = schema.sql     # optional

Then every run that collects the suite's default paths (or names the migrations directory)
also runs, under the node `migrations`:

- `file_set`: the files load, their names follow `NNN_name.py|.sql`, no gap, no duplicate;
- `upgrade_from_empty`: every migration applies to an empty database in one run, then
  `verify` passes;
- `roundtrip[FILE]`, one per migration file: up, verify, down, the schema before up, up again
  (on one scratch database, in order; a file after a failure is skipped);
- `schema_matches_file` (with `schemalog_schema_file`): the schema after the last migration
  equals that file (`schemalog.testing.assert_schema_matches`).

The `schemalog_migrator` fixture gives a `Migrator` on a scratch database (removed afterwards)
with the suite's migrations: `schemalog_migrator.upgrade(2)`, insert rows, `upgrade()`, check.
Everything runs on scratch databases in temporary directories; nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from schemalog.engine.commands.check import CheckReport
    from schemalog.engine.migrator import Migrator

MIGRATIONS_INI = "schemalog_migrations"
SCHEMA_INI = "schemalog_schema_file"
_SUFFIXES = (".py", ".sql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        MIGRATIONS_INI,
        "schemalog: directory of migration files to test with ready-made tests "
        "(relative to the ini file)",
        default="",
    )
    parser.addini(
        SCHEMA_INI,
        "schemalog: file with the expected schema after the last migration "
        "(`schemalog schema --output FILE` writes one)",
        default="",
    )


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    """The path the ini option `name` gives, anchored at the ini file's directory."""
    value = str(config.getini(name) or "").strip()
    if not value:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return (base / value).resolve()


def _wanted(config: pytest.Config, directory: Path) -> bool:
    """Whether this run asked for the ready-made tests: the suite's default paths (no
    arguments, or `testpaths`) include them; explicit arguments only when one of them is the
    migrations directory or a path inside it (select single tests with `-k`)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    here = config.invocation_params.dir
    for arg in config.args:
        resolved = (here / arg.partition("::")[0]).resolve()
        if resolved == directory or directory in resolved.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    directory = _ini_path(config, MIGRATIONS_INI)
    if directory is None or not _wanted(config, directory):
        return
    collector = MigrationSet.from_parent(session, path=directory)
    added = collector.collect()
    # reported as collected, so the counts and --collect-only include them
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(collector.nodeid, "passed", None, added)
    )
    items.extend(added)


def _migration_files(directory: Path) -> list[Path]:
    """The files `load_registry` takes for migrations, by name (they are not loaded here)."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix.lower() in _SUFFIXES and not p.name.startswith(("_", ".")) and p.is_file()
    )


class MigrationSet(pytest.Collector):
    """The ready-made tests of one migrations directory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report: CheckReport | BaseException | None = None

    @classmethod
    def from_parent(cls, parent: pytest.Session, *, path: Path) -> MigrationSet:  # type: ignore[override]
        name = path.name
        try:
            name = str(path.relative_to(parent.config.rootpath))
        except ValueError:
            name = str(path)
        return super().from_parent(parent, name=name, path=path, nodeid=name)

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = [
            SetItem.from_parent(self, name="file_set", check=_check_file_set),
            SetItem.from_parent(self, name="upgrade_from_empty", check=_check_upgrade),
        ]
        items += [
            RoundTrip.from_parent(self, name=f"roundtrip[{f.name}]", path=f, file=f)
            for f in _migration_files(self.path)
        ]
        if _ini_path(self.config, SCHEMA_INI) is not None:
            items.append(SetItem.from_parent(self, name="schema_matches_file", check=_check_schema))
        return items

    def report(self) -> CheckReport:
        """Every migration's round trip from an empty database (run once, for all items)."""
        if self._report is None:
            from schemalog.engine.base.settings import Settings
            from schemalog.engine.commands.check import check_from_empty

            try:
                self._report = check_from_empty(Settings(migrations=self.path))
            except Exception as exc:  # a file error: every round trip reports it
                self._report = exc
        if isinstance(self._report, BaseException):
            raise self._report
        return self._report


class _Item(pytest.Item):
    """A ready-made test: failures show schemalog's message, not a traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from schemalog.engine.base.errors import SchemalogError

        if isinstance(excinfo.value, AssertionError | SchemalogError):
            return f"{self.name}: {excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))


class SetItem(_Item):
    """A test of the whole directory (`check` is called with the directory and the config)."""

    def __init__(self, *args: Any, check: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check = check

    def runtest(self) -> None:
        self._check(self.path, self.config)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"schemalog {self.name}: {self.path}"


class RoundTrip(_Item):
    """One migration file's up, verify, down, schema, up again."""

    def __init__(self, *args: Any, file: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file = file

    def runtest(self) -> None:
        assert isinstance(self.parent, MigrationSet)
        report = self.parent.report()
        result = next((r for r in report.results if r.filename == self.file.name), None)
        if result is None:
            msg = f"{self.file.name} was not tested (not a migration of this set)"
            raise AssertionError(msg)
        if result.outcome == "skipped":
            pytest.skip(f"{self.file.name}: {result.detail}")
        if result.outcome != "ok":
            done = ", ".join(result.steps) or "nothing"
            msg = f"{self.file.name} failed at {result.detail} (done: {done})\n{report.text()}"
            raise AssertionError(msg)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.file, None, f"schemalog roundtrip: {self.file.name}"


def _check_file_set(directory: Path, _config: pytest.Config) -> None:
    from schemalog.engine.files.registry import load_registry

    registry = load_registry(directory)
    if not len(registry):
        msg = f"no migration files in {directory}"
        raise AssertionError(msg)


def _check_upgrade(directory: Path, _config: pytest.Config) -> None:
    from schemalog.testing import assert_upgrade_from_scratch

    assert_upgrade_from_scratch(directory)


def _check_schema(directory: Path, config: pytest.Config) -> None:
    from schemalog.testing import assert_schema_matches

    assert_schema_matches(directory, _ini_path(config, SCHEMA_INI))


@pytest.fixture
def schemalog_migrator(request: pytest.FixtureRequest) -> Iterator[Migrator]:
    """A Migrator on a scratch database with the suite's migrations (`schemalog_migrations`),
    removed after the test."""
    directory = _ini_path(request.config, MIGRATIONS_INI)
    if directory is None:
        pytest.fail(
            f"the schemalog_migrator fixture needs `{MIGRATIONS_INI} = DIR` in the pytest ini",
            pytrace=False,
        )
    from schemalog.testing import scratch_migrator

    with scratch_migrator(directory) as migrator:
        yield migrator

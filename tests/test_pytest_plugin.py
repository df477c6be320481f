"""The pytest plugin (`schemalog.pytest_plugin`, entry point `pytest11`), run with pytester:
a suite that sets `schemalog_migrations` gets ready-made tests reported per file; a bad `down`
fails naming its file; a suite that has not opted in gets nothing."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from schemalog import pytest_plugin
from tests.conftest import run_python

pytest_plugins = ["pytester"]

GOOD = {
    "001_create_items.sql": """
        -- Items.
        -- migrate:up
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        -- migrate:down
        DROP TABLE items;
        -- migrate:verify
        SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'items';
        """,
    "002_add_note.py": '''
        """A note per item."""
        up = "ALTER TABLE items ADD COLUMN note TEXT;"
        down = "ALTER TABLE items DROP COLUMN note;"
        ''',
    "003_create_tags.sql": """
        -- Tags.
        -- migrate:up
        CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
        -- migrate:down
        DROP TABLE tags;
        """,
}

BAD_DOWN = '''
    """A note per item, whose down forgets to drop it."""
    up = "ALTER TABLE items ADD COLUMN note TEXT;"
    down = "SELECT 1;"
    '''

INI = "[pytest]\nschemalog_migrations = db/migrations\n"


@pytest.fixture
def project(pytester: pytest.Pytester):
    """A project with the GOOD migrations in db/migrations and one ordinary test."""
    migrations = pytester.mkdir("db").joinpath("migrations")
    migrations.mkdir()
    for name, text in GOOD.items():
        migrations.joinpath(name).write_text(textwrap.dedent(text).strip() + "\n")
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    return pytester


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """node id -> PASSED/FAILED/SKIPPED from a `-v` run's output."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED"):
            if f" {word}" in line and "::" in line and not line.startswith(word):
                found[line.split(f" {word}")[0].strip()] = word
    return found


def schema_file_of_the_migrations(project: pytest.Pytester) -> Path:
    """db/schema.sql as a user writes it: `up` on a scratch database, `schema --output`."""
    base = ["-m", "schemalog", "--database", "scratch.db", "--migrations", "db/migrations"]
    for args in (["up"], ["schema", "--output", "db/schema.sql"]):
        done = run_python(project.path, *base, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return project.path / "db/schema.sql"


class TestOptedIn:
    def test_a_good_set_passes_with_one_item_per_file(self, project: pytest.Pytester):
        """The ready-made tests run beside the suite's own, one roundtrip item per file."""
        project.makeini(INI)
        result = project.runpytest("-v", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=6)
        result.stdout.fnmatch_lines(["collecting ... collected 6 items"])
        assert outcomes(result) == {
            "test_app.py::test_app": "PASSED",
            "db/migrations::file_set": "PASSED",
            "db/migrations::upgrade_from_empty": "PASSED",
            "db/migrations::roundtrip[001_create_items.sql]": "PASSED",
            "db/migrations::roundtrip[002_add_note.py]": "PASSED",
            "db/migrations::roundtrip[003_create_tags.sql]": "PASSED",
        }

    def test_a_bad_down_fails_naming_its_file(self, project: pytest.Pytester):
        """A down that does not restore the schema fails that file's item, naming the file;
        the files after it are skipped, the others pass."""
        project.makeini(INI)
        (project.path / "db/migrations/002_add_note.py").write_text(textwrap.dedent(BAD_DOWN))
        result = project.runpytest("-v", "-p", "no:cacheprovider")
        assert outcomes(result) == {
            "test_app.py::test_app": "PASSED",
            "db/migrations::file_set": "PASSED",
            "db/migrations::upgrade_from_empty": "PASSED",
            "db/migrations::roundtrip[001_create_items.sql]": "PASSED",
            "db/migrations::roundtrip[002_add_note.py]": "FAILED",
            "db/migrations::roundtrip[003_create_tags.sql]": "SKIPPED",
        }
        result.stdout.fnmatch_lines(
            ["*roundtrip[[]002_add_note.py[]]: 002_add_note.py failed at down: reverting*"]
        )
        assert result.ret == pytest.ExitCode.TESTS_FAILED

    def test_a_gap_fails_the_file_set_naming_the_files(self, project: pytest.Pytester):
        """A gap in the numbering fails file_set with the registry's message."""
        project.makeini(INI)
        (project.path / "db/migrations/003_create_tags.sql").rename(
            project.path / "db/migrations/005_create_tags.sql"
        )
        result = project.runpytest("-v", "-p", "no:cacheprovider", "-k", "file_set")
        result.assert_outcomes(failed=1, deselected=5)
        result.stdout.fnmatch_lines(["*file_set:*gap*"])

    def test_schema_file_item_passes_on_the_right_file(self, project: pytest.Pytester):
        """With schemalog_schema_file, schema_matches_file compares the schema after the last
        migration with the file: the file `schema --output` would write passes."""
        schema_file_of_the_migrations(project)
        project.makeini(INI + "schemalog_schema_file = db/schema.sql\n")
        result = project.runpytest("-v", "-p", "no:cacheprovider", "-k", "schema_matches")
        assert outcomes(result) == {"db/migrations::schema_matches_file": "PASSED"}

    def test_schema_file_item_fails_naming_the_difference(self, project: pytest.Pytester):
        schema_file_of_the_migrations(project)
        schema = project.path / "db/schema.sql"
        schema.write_text(schema.read_text().replace("items", "things"))
        project.makeini(INI + "schemalog_schema_file = db/schema.sql\n")
        result = project.runpytest("-v", "-p", "no:cacheprovider", "-k", "schema_matches")
        assert outcomes(result) == {"db/migrations::schema_matches_file": "FAILED"}
        result.stdout.fnmatch_lines(["*differs from*db/schema.sql*"])

    def test_fixture_gives_a_scratch_migrator(self, project: pytest.Pytester):
        """schemalog_migrator is a Migrator on a scratch database with the suite's files."""
        project.makeini(INI)
        project.makepyfile(
            test_data="""
            import sqlite3

            def test_rows_survive(schemalog_migrator):
                schemalog_migrator.upgrade(1)
                db = schemalog_migrator.paths.database
                with sqlite3.connect(db) as conn:
                    conn.execute("INSERT INTO items (name) VALUES ('a')")
                conn.close()
                schemalog_migrator.upgrade()
                assert schemalog_migrator.status().version == 3
                assert "scratch" in db.name
            """
        )
        result = project.runpytest("-p", "no:cacheprovider", "test_data.py")
        result.assert_outcomes(passed=1)

    def test_explicit_paths_elsewhere_add_nothing(self, project: pytest.Pytester):
        """`pytest test_app.py` runs only that file; naming the directory runs the set."""
        project.makeini(INI)
        project.runpytest("-p", "no:cacheprovider", "test_app.py").assert_outcomes(passed=1)
        only = project.runpytest("-p", "no:cacheprovider", "db/migrations", "-k", "upgrade")
        only.assert_outcomes(passed=1, deselected=4)
        listed = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
        listed.stdout.fnmatch_lines(["db/migrations::roundtrip[[]003_create_tags.sql[]]"])


class TestNotOptedIn:
    def test_nothing_is_added_without_the_ini_option(self, project: pytest.Pytester):
        """Without schemalog_migrations the suite runs exactly its own tests."""
        project.makeini("[pytest]\n")
        result = project.runpytest("-v", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert list(outcomes(result)) == ["test_app.py::test_app"]

    def test_the_fixture_says_what_is_missing(self, project: pytest.Pytester):
        """Using the fixture without the ini option fails naming the option."""
        project.makepyfile(test_fx="def test_it(schemalog_migrator):\n    pass\n")
        result = project.runpytest("-p", "no:cacheprovider", "test_fx.py")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*needs `schemalog_migrations = DIR`*"])

    def test_registered_as_a_pytest11_entry_point(self):
        """The installed package registers the plugin with pytest."""
        points = importlib.metadata.entry_points(group="pytest11")
        assert {p.value for p in points if p.name == "schemalog"} == {pytest_plugin.__name__}

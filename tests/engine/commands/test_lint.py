"""Tests for schemalog.engine.commands.lint and the analyzers in engine.core.lint: one finding per
problem file, a clean set lints clean, the database is never changed, allow comments."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemalog.engine.base.errors import CheckFailed
from schemalog.engine.cli import cli
from schemalog.engine.core.lint.rules import RULES, allows_in
from schemalog.engine.core.lint.statements import classify
from tests.engine.commands.lint_sets import BASE, CLEAN, PROBLEMS, ROWS
from tests.engine.conftest import make_migrator

REPO = Path(__file__).resolve().parents[3]


def write(directory: Path, files: dict[str, str]) -> Path:
    """Write `files` into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def digest(*paths: Path) -> list[str]:
    """The SHA-256 of each file (or None for a missing one)."""
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths]


@pytest.fixture
def problem_db(tmp_path):
    """A database at version 1 with rows, and the problem files pending."""
    migrations = write(tmp_path / "migrations", BASE)
    migrator = make_migrator(tmp_path, migrations)
    migrator.upgrade()
    with closing(sqlite3.connect(migrator.paths.database)) as conn:
        conn.executescript(ROWS)
        conn.commit()
    write(migrations, {name: text for name, (_code, text) in PROBLEMS.items()})
    return migrator


def lint_report(migrator, **options):
    """The lint report, whether or not it found errors."""
    try:
        return migrator.lint(**options)
    except CheckFailed as exc:
        return exc.report


class TestProblemSet:
    """Each problem file gets exactly its finding."""

    def test_one_finding_per_file(self, problem_db):
        """Linted on a copy of the filled database, every file gets its code and only it."""
        report = lint_report(problem_db, long_rows=100)
        codes: dict[str, set[str]] = {}
        for f in report.findings:
            codes.setdefault(f.file, set()).add(f.code)
        assert codes == {name: {code} for name, (code, _) in PROBLEMS.items()}
        assert report.source == "copy"
        assert report.errors == sum(1 for f in report.findings if f.severity == "error")

    def test_every_rule_family_is_covered(self):
        """The problem set exercises every rule but the allow-comment one."""
        assert {code for code, _ in PROBLEMS.values()} == set(RULES) - {"SL003"}

    def test_errors_exit_1_and_the_database_is_byte_identical(self, problem_db):
        """`lint` exits 1 with findings, and the database and its journal are unchanged."""
        paths = problem_db.paths
        files = (paths.database, paths.jsonl)
        before = digest(*files)
        result = CliRunner().invoke(
            cli,
            [
                "--database",
                str(paths.database),
                "--migrations",
                str(problem_db.settings.migrations),
                "lint",
                "--long-rows",
                "100",
                "--json",
            ],
        )
        assert result.exit_code == 1, result.output
        doc = json.loads(result.stdout)
        assert {"code", "severity", "version", "file", "statement", "message"} <= set(
            doc["findings"][0]
        )
        assert digest(*files) == before
        assert not paths.database.with_name(paths.database.name + "-journal").exists()

    def test_data_rules_need_the_data(self, problem_db):
        """From an empty database (--all), the rules about rows do not fire."""
        report = lint_report(problem_db, every=True, long_rows=100)
        found = {f.code for f in report.findings}
        assert report.source == "empty"
        assert {"SL101", "SL102", "SL201", "SL701"}.isdisjoint(found)
        assert {"SL401", "SL402", "SL501"} <= found
        rebuild = [f for f in report.findings if f.code == "SL301"]
        assert rebuild and rebuild[0].severity == "warning"  # no rows to cascade here

    def test_later_files_are_linted_after_a_failure(self, problem_db):
        """A migration that fails on the scratch copy does not hide the ones after it."""
        report = lint_report(problem_db, long_rows=100)
        after = [f for f in report.findings if f.file == "016_typo.sql"]
        assert after and "linted without 011_unique_email.sql" in after[0].message


class TestCleanSet:
    """A clean set lints to exit 0."""

    def test_clean_set_exits_0(self, tmp_path):
        """No findings, exit 0, from an empty database and on a copy."""
        migrations = write(tmp_path / "migrations", CLEAN)
        migrator = make_migrator(tmp_path, migrations)
        report = migrator.lint()
        assert report.findings == [] and report.errors == 0
        migrator.upgrade(1)
        result = CliRunner().invoke(
            cli,
            ["--database", str(migrator.paths.database), "--migrations", str(migrations), "lint"],
        )
        assert result.exit_code == 0, result.output
        assert "no findings" in result.stdout

    def test_without_a_database(self, tmp_path):
        """Without --database, lint builds from an empty database."""
        migrations = write(tmp_path / "migrations", CLEAN)
        result = CliRunner().invoke(cli, ["--migrations", str(migrations), "lint", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["source"] == "empty"

    def test_nothing_pending(self, tmp_path):
        """With every migration applied, nothing is linted (exit 0)."""
        migrations = write(tmp_path / "migrations", CLEAN)
        migrator = make_migrator(tmp_path, migrations)
        migrator.upgrade()
        assert migrator.lint().migrations == []


class TestAllow:
    """A file silences a rule for itself, with a reason."""

    def test_allow_with_reason(self, problem_db):
        """An allow comment moves the finding to `allowed`, with its reason."""
        path = problem_db.settings.migrations / "002_drop_archive.sql"
        path.write_text("-- schemalog: allow SL101 archived to cold storage\n" + path.read_text())
        report = lint_report(problem_db, long_rows=100)
        assert not [f for f in report.findings if f.file == "002_drop_archive.sql"]
        assert [(a["code"], a["reason"]) for a in report.allowed] == [
            ("SL101", "archived to cold storage")
        ]

    def test_allow_without_reason_silences_nothing(self, problem_db):
        """An allow comment without a reason is itself a finding, and the finding stays."""
        path = problem_db.settings.migrations / "006_no_down.sql"
        path.write_text("-- schemalog: allow SL401\n" + path.read_text())
        report = lint_report(problem_db, long_rows=100)
        assert {f.code for f in report.findings if f.file == "006_no_down.sql"} == {
            "SL003",
            "SL401",
        }

    def test_python_comment(self):
        """`# schemalog: allow` in a .py file, several codes at once."""
        (allow,) = allows_in("x = 1\n# schemalog: allow SL401, sl601 nothing to undo\n")
        assert allow.codes == ("SL401", "SL601") and allow.reason == "nothing to undo"


class TestStatements:
    """What lint reads in a statement."""

    @pytest.mark.parametrize(
        ("sql", "kind", "table", "column"),
        [
            ('DROP TABLE IF EXISTS main."Old T"', "drop_table", "Old T", None),
            ("ALTER TABLE users DROP COLUMN email", "drop_column", "users", "email"),
            ("ALTER TABLE users DROP email", "drop_column", "users", "email"),
            ("ALTER TABLE t ADD COLUMN c TEXT NOT NULL", "add_column", "t", "c"),
            ("ALTER TABLE t RENAME TO u", "rename_table", "t", None),
            ("ALTER TABLE t RENAME COLUMN a TO b", "rename_column", "t", "a"),
            (
                "CREATE UNIQUE INDEX i ON t (a DESC, b) WHERE a > 0",
                "create_unique_index",
                "t",
                None,
            ),
            ("INSERT OR REPLACE INTO t SELECT * FROM u", "insert", "t", None),
            ("UPDATE OR IGNORE t SET a = 1", "update", "t", None),
            ("DELETE FROM t", "delete", "t", None),
            ("SELECT 'DROP TABLE users'", "other", None, None),
        ],
    )
    def test_classify(self, sql, kind, table, column):
        """The kind, table and column of common statements; strings never match."""
        stmt = classify(sql)
        assert (stmt.kind, stmt.table, stmt.column) == (kind, table, column)

    def test_not_null_with_default(self):
        """ADD COLUMN NOT NULL with a DEFAULT is fine."""
        assert not classify("ALTER TABLE t ADD c TEXT NOT NULL DEFAULT ''").not_null_without_default
        assert classify("ALTER TABLE t ADD c TEXT NOT NULL").not_null_without_default

    def test_partial_index(self):
        """A partial unique index keeps its columns and condition."""
        stmt = classify("CREATE UNIQUE INDEX i ON t (a, lower(b)) WHERE a > 0")
        assert (stmt.index_columns, stmt.index_where) == ("a, lower(b)", "a > 0")

    def test_non_deterministic(self):
        """random() and the current time written into rows are found; a DEFAULT is not."""
        assert classify("UPDATE t SET a = random()").non_deterministic() == ["random()"]
        assert classify("INSERT INTO t SELECT datetime('now')").non_deterministic() == ["'now'"]
        assert classify("CREATE TABLE t (a DEFAULT CURRENT_TIMESTAMP)").non_deterministic() == []


def test_lint_docs_list_every_code():
    """docs/lint.md has a section, an example and a fix for every code."""
    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    for code in RULES:
        section = text.split(f"## {code}", 1)
        assert len(section) == 2, f"docs/lint.md has no section for {code}"
        body = section[1].split("\n## ", 1)[0]
        assert "Example" in body and "Fix" in body, code

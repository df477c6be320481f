"""Every message that says a schema differs names the objects that differ and how: a `down` that
does not restore the recorded schema (a Django-generated set), drift in `up`, `verify` and
`status`, in text and in JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from schemalog.engine.base.errors import DriftDetected, VerificationFailed
from schemalog.engine.cli import cli
from tests.engine.conftest import execute, make_migrator, of_kind, table_events, write_migrations

# The shape Django's SQLite schema editor generates: `AddField` rebuilds the table
# (new__<table>, copy, drop, rename), and the reverse `RemoveField` rebuilds it again, here
# with the columns in another order -- as 55 of 135 Django + wagtail downs do.
DJANGO = {
    "0001_initial.sql": """
        -- migrate:up
        CREATE TABLE "polls_question" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "question_text" varchar(200) NOT NULL, "pub_date" datetime NOT NULL);
        CREATE TABLE "polls_choice" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "choice_text" varchar(200) NOT NULL, "votes" integer NOT NULL, "question_id" integer NOT NULL REFERENCES "polls_question" ("id") DEFERRABLE INITIALLY DEFERRED);
        CREATE INDEX "polls_choice_question_id_c5b4b260" ON "polls_choice" ("question_id");
        -- migrate:down
        DROP TABLE "polls_choice";
        DROP TABLE "polls_question";
        """,
    "0002_question_author.sql": """
        -- migrate:up foreign_keys:false
        CREATE TABLE "new__polls_question" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "question_text" varchar(200) NOT NULL, "pub_date" datetime NOT NULL, "author" varchar(100) NULL);
        INSERT INTO "new__polls_question" ("id", "question_text", "pub_date", "author") SELECT "id", "question_text", "pub_date", NULL FROM "polls_question";
        DROP TABLE "polls_question";
        ALTER TABLE "new__polls_question" RENAME TO "polls_question";
        -- migrate:down foreign_keys:false
        CREATE TABLE "new__polls_question" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "pub_date" datetime NOT NULL, "question_text" varchar(200) NOT NULL);
        INSERT INTO "new__polls_question" ("id", "pub_date", "question_text") SELECT "id", "pub_date", "question_text" FROM "polls_question";
        DROP TABLE "polls_question";
        ALTER TABLE "new__polls_question" RENAME TO "polls_question";
        """,
}


def _down_sql_options_fixed(files: dict[str, str]) -> dict[str, str]:
    """Options belong on the up line in .sql files: drop them from the down line."""
    return {
        name: text.replace("-- migrate:down foreign_keys:false", "-- migrate:down")
        for name, text in files.items()
    }


@pytest.fixture
def django(tmp_path):
    """The Django-shaped set, applied."""
    migrations = write_migrations(tmp_path / "migrations", _down_sql_options_fixed(DJANGO))
    migrator = make_migrator(tmp_path, migrations)
    migrator.upgrade()
    return migrator


class TestDownNamesWhatDiffers:
    """A `down` that does not restore the schema says which table and how."""

    def test_reordered_columns(self, django):
        """The failure names the table and says its columns were reordered, in both orders."""
        with pytest.raises(VerificationFailed) as info:
            django.downgrade(1)
        message = info.value.message
        assert "table polls_question: columns reordered" in message
        assert "(id, question_text, pub_date → id, pub_date, question_text)" in message
        assert "column author" not in message  # the down did remove the column `up` added
        diff = info.value.diff  # type: ignore[attr-defined]
        (obj,) = diff.objects
        assert (obj.type, obj.name, obj.columns_added, obj.columns_removed) == (
            "table",
            "polls_question",
            (),
            (),
        )

    def test_the_event_holds_the_structured_diff(self, django):
        """`verification_failed` carries the diff as JSON (events --json shows it)."""
        with pytest.raises(VerificationFailed):
            django.downgrade(1)
        (event,) = of_kind(table_events(django.paths.database), "verification_failed")
        (obj,) = event.data["diff"]
        assert obj["name"] == "polls_question"
        assert obj["columns_reordered"]["actual"] == ["id", "pub_date", "question_text"]

    def test_check_reports_it_too(self, tmp_path):
        """`check` (scratch round trip) fails with the same detail."""
        migrations = write_migrations(tmp_path / "migrations", _down_sql_options_fixed(DJANGO))
        migrator = make_migrator(tmp_path, migrations)
        with pytest.raises(Exception, match="columns reordered") as info:
            migrator.check()
        assert "0002_question_author.sql" in str(info.value)

    def test_steps_record_their_schema_changes(self, django):
        """`step_applied` holds the objects the step changed, before and after."""
        applied = of_kind(table_events(django.paths.database), "step_applied")
        changes = applied[1].data["schema_changes"]
        assert [(c[0], c[1]) for c in changes] == [("table", "polls_question")]
        assert "author" in changes[0][3][1] and "author" not in changes[0][2][1]


class TestDriftNamesWhatChanged:
    """Drift messages and documents name the objects."""

    @pytest.fixture
    def drifted(self, django):
        """The Django set with an index and a column added behind schemalog's back."""
        execute(
            django.paths.database,
            'CREATE INDEX sneaky ON "polls_question" ("pub_date")',
            'ALTER TABLE "polls_choice" ADD COLUMN "note" text',
        )
        write_migrations(
            django.settings.migrations,
            {
                "0003_more.sql": "-- migrate:up\nCREATE TABLE t (x);\n-- migrate:down\nDROP TABLE t;\n"
            },
        )
        return django

    def test_up_refuses_naming_them(self, drifted):
        """`up` refuses and names the index added and the column added; the event has the diff."""
        with pytest.raises(DriftDetected) as info:
            drifted.upgrade()
        assert "index sneaky: added" in info.value.message
        assert "table polls_choice: column note added" in info.value.message
        (event,) = of_kind(table_events(drifted.paths.database), "drift_detected")
        assert [o["name"] for o in event.data["diff"]] == ["sneaky", "polls_choice"]

    def test_dry_run_names_them(self, drifted):
        """`up --dry-run` refuses with the same names, recording nothing."""
        with pytest.raises(DriftDetected, match="index sneaky: added"):
            drifted.upgrade(dry_run=True)

    def test_allowed_drift_becomes_the_recorded_schema(self, drifted):
        """After `--allow-drift`, later drift is named against the accepted schema."""
        drifted.upgrade(allow_drift=True)
        execute(drifted.paths.database, "DROP INDEX sneaky")
        status = drifted.status()
        assert status.drift and status.drift_detail == "index sneaky: removed"

    def test_verify_and_status_json(self, drifted):
        """`verify --json` and `status --json` give the diff and its one line."""
        args = [
            "--database",
            str(drifted.paths.database),
            "--migrations",
            str(drifted.settings.migrations),
        ]
        verify = CliRunner().invoke(cli, [*args, "verify", "--json"])
        assert verify.exit_code == 1
        (schema,) = [c for c in json.loads(verify.stdout)["checks"] if c["check"] == "schema"]
        assert "index sneaky: added" in schema["detail"]
        assert {o["name"] for o in schema["diff"]} == {"sneaky", "polls_choice"}
        status = CliRunner().invoke(cli, [*args, "status", "--json"])
        doc = json.loads(status.stdout)
        assert doc["drift"] is True
        assert doc["drift_detail"].startswith("index sneaky: added")
        text = CliRunner().invoke(cli, [*args, "status"]).stdout
        assert "drift" in text and "column note added" in text

    def test_baseline_records_the_whole_schema(self, tmp_path):
        """A baselined database's drift is named too (`baseline_set` holds the schema)."""
        migrations = write_migrations(tmp_path / "migrations", _down_sql_options_fixed(DJANGO))
        migrator = make_migrator(tmp_path, migrations)
        execute(
            migrator.paths.database,
            *[
                s
                for s in _down_sql_options_fixed(DJANGO)["0001_initial.sql"]
                .split("-- migrate:down")[0]
                .split("-- migrate:up")[1]
                .split(";")
                if s.strip()
            ],
        )
        migrator.baseline(1)
        execute(migrator.paths.database, "CREATE TABLE extra (x)")
        assert migrator.status().drift_detail == "table extra: added"

"""A realistic database: PROJ's `proj.db` (8 MB, 36 tables, 35 triggers, 7 views), adopted
with `baseline` and migrated in place.

`proj.db` comes from Debian's `proj-data` package (`/usr/share/proj/proj.db`); set
`SCHEMALOG_PROJ_DB` to use another copy. Without one the tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.engine.conftest import (
    assert_journals_identical,
    connect,
    live_fingerprint,
    make_migrator,
    of_kind,
    schema_rows,
    user_version,
    write_migrations,
)

PROJ_DB_CANDIDATES = [
    os.environ.get("SCHEMALOG_PROJ_DB", ""),
    "/usr/share/proj/proj.db",
]


def _find_proj_db() -> Path | None:
    for candidate in PROJ_DB_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


PROJ_DB = _find_proj_db()

pytestmark = pytest.mark.skipif(
    PROJ_DB is None,
    reason="proj.db not found: apt-get install proj-data, or set SCHEMALOG_PROJ_DB",
)

MIGRATIONS = {
    "001_add_usage_note.sql": """
        -- A free-text note on every usage row (the biggest table, ~22k rows).
        -- migrate:up
        ALTER TABLE usage ADD COLUMN note TEXT;
        -- migrate:down
        ALTER TABLE usage DROP COLUMN note;
        -- migrate:verify
        SELECT COUNT(*) = 1 FROM pragma_table_info('usage') WHERE name = 'note';
        """,
    "002_index_alias_names.sql": """
        -- Look up aliases by their alternative name.
        -- migrate:up
        CREATE INDEX idx_alias_name_alt_name ON alias_name (alt_name);
        -- migrate:down
        DROP INDEX idx_alias_name_alt_name;
        """,
    "003_projected_crs_per_authority.sql": """
        -- How many projected CRSs each authority defines.
        -- migrate:up
        CREATE VIEW v_projected_crs_per_authority AS
        SELECT auth_name, COUNT(*) AS n FROM projected_crs GROUP BY auth_name;
        -- migrate:down
        DROP VIEW v_projected_crs_per_authority;
        -- migrate:verify
        SELECT (SELECT SUM(n) FROM v_projected_crs_per_authority)
             = (SELECT COUNT(*) FROM projected_crs);
        """,
    "004_refuse_empty_usage_note.sql": """
        -- Refuse an empty note (NULL means none).
        -- migrate:up
        CREATE TRIGGER trg_usage_note_not_empty
        BEFORE UPDATE OF note ON usage
        FOR EACH ROW WHEN NEW.note = ''
        BEGIN
            SELECT RAISE(ABORT, 'usage.note must be NULL or non-empty');
        END;
        -- migrate:down
        DROP TRIGGER trg_usage_note_not_empty;
        """,
}


def counts(db: Path) -> dict[str, int]:
    """Row count of every table of `db` other than schemalog's."""
    with closing(connect(db)) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'schemalog%' AND name NOT LIKE 'sqlite%'"
            )
        ]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def views_and_triggers(db: Path) -> dict[str, str]:
    """name -> SQL text of every view and trigger."""
    return {name: sql for kind, name, _, sql in schema_rows(db) if kind in ("view", "trigger")}


def check_database(db: Path) -> None:
    """integrity_check ok, foreign_key_check clean, every view readable."""
    with closing(connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for (view,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'view'"
        ).fetchall():
            conn.execute(f'SELECT * FROM "{view}" LIMIT 1').fetchall()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """proj.db copied, adopted with baseline(0), then migrated to version 4."""
    assert PROJ_DB is not None
    tmp = tmp_path_factory.mktemp("proj")
    db = tmp / "app.db"
    shutil.copyfile(PROJ_DB, db)
    migrations = write_migrations(tmp / "migrations", MIGRATIONS)
    before = {
        "counts": counts(db),
        "views_triggers": views_and_triggers(db),
        "schema": schema_rows(db),
        "fingerprint": live_fingerprint(db),
    }
    m = make_migrator(tmp, migrations)
    started = time.perf_counter()
    m.baseline(0)
    adopted = time.perf_counter()
    report = m.upgrade()
    done = time.perf_counter()
    print(
        f"\nproj.db ({db.stat().st_size / 1e6:.1f} MB): baseline {adopted - started:.2f} s, "
        f"upgrade 0→4 {done - adopted:.2f} s"
    )
    return m, db, before, report


class TestProjDb:
    """Migrating a real, populated database keeps every row, view and trigger."""

    def test_upgrade_applies_all_four(self, migrated):
        """Baseline 0 then upgrade reaches version 4 with journals and replay agreeing."""
        m, db, _, report = migrated
        assert [s.version for s in report.result.steps] == [1, 2, 3, 4]
        assert user_version(db) == m.replay().version == 4
        events = assert_journals_identical(db)
        assert len(of_kind(events, "baseline_set")) == 1
        status = m.status()
        assert status.drift is False and status.needs_recovery is False

    def test_every_table_keeps_its_rows(self, migrated):
        """Every pre-existing table has the row count it had before."""
        _, db, before, _ = migrated
        after = counts(db)
        assert {n: after[n] for n in before["counts"]} == before["counts"]
        assert sum(before["counts"].values()) > 50_000

    def test_views_and_triggers_intact(self, migrated):
        """Every pre-existing view and trigger is there with the same text; the new ones too."""
        _, db, before, _ = migrated
        now = views_and_triggers(db)
        assert {n: now[n] for n in before["views_triggers"]} == before["views_triggers"]
        assert {"v_projected_crs_per_authority", "trg_usage_note_not_empty"} <= set(now)

    def test_integrity_and_foreign_keys(self, migrated):
        """integrity_check is ok, foreign_key_check is clean and every view can be read."""
        _, db, _, _ = migrated
        check_database(db)

    def test_new_trigger_is_enforced(self, migrated):
        """The trigger added by migration 4 refuses an empty note."""
        _, db, _, _ = migrated
        with closing(connect(db)) as conn:
            conn.execute("UPDATE usage SET note = 'checked' WHERE rowid = 1")
            with pytest.raises(Exception, match="must be NULL or non-empty"):
                conn.execute("UPDATE usage SET note = '' WHERE rowid = 1")
            conn.execute("UPDATE usage SET note = NULL WHERE rowid = 1")

    def test_verified_downgrade_restores_the_original_schema(self, migrated):
        """Down to 0 passes the schema checks and gives back proj.db's own schema and rows."""
        m, db, before, _ = migrated
        started = time.perf_counter()
        m.downgrade(0)
        print(f"\nproj.db downgrade 4→0 {time.perf_counter() - started:.2f} s")
        assert user_version(db) == m.replay().version == 0
        assert live_fingerprint(db) == before["fingerprint"]
        assert counts(db) == before["counts"]
        assert views_and_triggers(db) == before["views_triggers"]
        check_database(db)
        assert_journals_identical(db)

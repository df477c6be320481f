"""Writing commands beside an application that keeps committing (DESIGN.md invariant 9).

Each scenario starts the application writer (100 tx/s into `app_events`), runs one command,
stops the writer, and then counts every row the writer saw committed that is missing: a
missing row fails the test unless the command's output names the loss (the table, how many
rows, and a kept file that holds them). Both journals must be equal and `status --json`
consistent afterwards.
"""

from __future__ import annotations

import time

import pytest

from tests.live import migration_sets
from tests.live.harness import RATE, end_state, judge, one_line

pytestmark = pytest.mark.live

SETTLE_S = 0.3  # the writer commits this long before and after each command


def beside_writer(ws, writer, record, *args, expect_version):
    """Run `schemalog ARGS` between two short spells of application commits; stop the writer
    and check the end state. Returns (the command, the end state)."""
    time.sleep(SETTLE_S)
    done = ws.run(*args)
    time.sleep(SETTLE_S)
    state = end_state(ws, writer, outputs=[done.output], expect_version=expect_version)
    record["run"] = done.brief()
    record["app_latency_during_run"] = writer.latency_during(done.started, done.finished)
    return done, state


class TestUpBesideWriter:
    def test_up_keeps_every_row(self, ws, writers, record):
        """`up` of four migrations (one a table rebuild) beside the writer: exit 0, nothing lost."""
        ws.prepare(migration_sets.schema_changes())
        done, state = beside_writer(ws, writers(rate=RATE), record, "up", expect_version=5)
        judge(record, state, [(done.code == 0, f"up exit {done.code}: {done.stderr.strip()}")])


class TestDownBesideWriter:
    def test_down_keeps_every_row(self, ws, writers, record):
        """`down --to 1` (through a rebuild) beside the writer: exit 0, nothing lost."""
        ws.prepare(migration_sets.schema_changes(), at=5)
        writer = writers(rate=RATE)
        done, state = beside_writer(ws, writer, record, "down", "--to", "1", expect_version=1)
        judge(record, state, [(done.code == 0, f"down exit {done.code}: {done.stderr.strip()}")])


class TestRestoreBesideWriter:
    def test_restore_names_what_it_discards(self, ws, writers, record):
        """`backup restore ID` beside the writer: every row it discards is named and kept."""
        ws.prepare(migration_sets.schema_changes(), at=3)
        writer = writers(rate=RATE)
        created = ws.run("backup", "create")
        listed = ws.run("backup", "list", "--json")
        backup_id = listed.json()[-1]["id"]
        time.sleep(2 * SETTLE_S)  # the application commits rows the backup does not hold
        done = ws.run("backup", "restore", backup_id)
        time.sleep(SETTLE_S)
        state = end_state(ws, writer, outputs=[done.output], expect_version=3)
        record["run"] = done.brief()
        record["app_latency_during_run"] = writer.latency_during(done.started, done.finished)
        judge(
            record,
            state,
            [
                (created.code == 0, f"backup create exit {created.code}: {created.stderr}"),
                (done.code == 0, f"restore exit {done.code}: {done.stderr.strip()}"),
            ],
        )


class TestFailingStepBesideWriter:
    def test_failed_step_rolls_back_only_itself(self, ws, writers, record):
        """A SQL error in migration 3 of 4 beside the writer: exit 1, version 3, nothing lost."""
        ws.prepare(migration_sets.failing_step())
        done, state = beside_writer(ws, writers(rate=RATE), record, "up", expect_version=3)
        with ws.connect() as conn:
            index = conn.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_customers_email'"
            ).fetchone()[0]
        judge(
            record,
            state,
            [
                (done.code == 1, f"up exit {done.code}, expected 1: {done.stderr.strip()}"),
                ("004_index_customers_email" in done.stderr, "the error names the failed file"),
                ("no_such_table" in done.stderr, "the error names the SQL error"),
                (one_line(done.stderr), f"one line on stderr: {done.stderr!r}"),
                (index == 0, "nothing of the failed step is left (its index exists)"),
            ],
        )

    def test_failed_nontransactional_step_keeps_app_rows(self, ws, writers, record):
        """VACUUM then a bad statement (`transactional = False`) beside the writer: exit 1,
        and every application row kept, or its loss named."""
        ws.prepare(migration_sets.failing_nontransactional())
        done, state = beside_writer(ws, writers(rate=RATE), record, "up", expect_version=3)
        judge(
            record,
            state,
            [
                (done.code == 1, f"up exit {done.code}, expected 1: {done.stderr.strip()}"),
                ("no_such_table" in done.stderr, "the error names the SQL error"),
            ],
        )

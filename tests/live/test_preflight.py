"""Preflight: a run that cannot write somewhere it must says so before it writes anything.

A read-only database file, a read-only database directory, an unwritable JSONL journal and an
unwritable backup directory: `up` exits 2 with one clear line naming the path, and every
file (database, -wal, -journal, JSONL, backups) is byte for byte what it was.

When the tests run as root (who ignores file modes), schemalog runs under `setpriv` without
the capabilities that override file permissions, so the modes bind as they would for an
application's own user.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.live import migration_sets
from tests.live.harness import end_state, judge, one_line, unprivileged_prefix

pytestmark = pytest.mark.live

CASES = {
    # name: (the path made read-only, relative to the workspace; its read-only mode)
    "read_only_database_file": ("app.db", 0o444),
    "read_only_database_directory": (".", 0o555),
    "unwritable_jsonl": ("app.db.journal.jsonl", 0o444),
    "unwritable_backup_directory": ("app.db.backups", 0o555),
}


@pytest.mark.parametrize("case", list(CASES))
class TestPreflight:
    def test_refused_before_anything_is_written(self, ws, record, case):
        """`up` with pending migrations and one unwritable path: exit 2, one line naming the
        path, nothing changed."""
        prefix = unprivileged_prefix()
        if prefix is None:
            pytest.skip("running as root without setpriv: file modes do not bind")
        ws.prepare(migration_sets.schema_changes())
        relative, read_only = CASES[case]
        target = (ws.root / relative).resolve()
        assert target.exists(), target
        before = ws.snapshot_files()
        seen = {e["hash"] for e in ws.jsonl_events()} | {e["hash"] for e in ws.table_events()}
        original = stat.S_IMODE(target.stat().st_mode)
        ws.prefix = prefix
        os.chmod(target, read_only)
        try:
            done = ws.run("up", timeout=60)
        finally:
            os.chmod(target, original)
            ws.prefix = ()
        after = ws.snapshot_files()
        changed = sorted(
            path for path in set(before) | set(after) if before.get(path) != after.get(path)
        )
        state = end_state(ws, None, expect_version=1)
        record["case"] = case
        record["run"] = done.brief()
        record["changed_files"] = changed
        record["new_events"] = {
            "table": [e["kind"] for e in ws.table_events() if e["hash"] not in seen],
            "jsonl": [e["kind"] for e in ws.jsonl_events() if e["hash"] not in seen],
        }
        named = str(target) in done.stderr or (relative == "." and str(ws.root) in done.stderr)
        judge(
            record,
            state,
            [
                (done.code == 2, f"up exit {done.code}, expected 2: {done.stderr.strip()}"),
                (one_line(done.stderr), f"one line on stderr: {done.stderr.strip()!r}"),
                ("unexpected" not in done.stderr, "not an 'unexpected' error"),
                (named, f"the error names {target}"),
                (not changed, f"files changed: {changed}"),
            ],
        )

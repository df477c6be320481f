"""Tests for schemalog.engine.core.plan: which steps `plan_up` / `plan_down` choose, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.engine.base.errors import MigrationFileError, NotReversible, UsageError
from schemalog.engine.core.plan import plan_down, plan_up
from schemalog.engine.files.registry import Registry, load_registry
from schemalog.journal.replay import AppliedMigration, State
from tests.engine.conftest import BASIC, write_migrations

PY_STEP = '''
"""A Python step."""


def up(conn):
    conn.execute("CREATE TABLE py (x)")


def down(conn):
    conn.execute("DROP TABLE py")
'''


def registry_of(directory: Path, files: dict[str, str]) -> Registry:
    """Write `files` and load them as a registry."""
    return load_registry(write_migrations(directory, files))


def state_at(registry: Registry, version: int) -> State:
    """The state of a database with migrations 1..version applied, each with fingerprints."""
    applied = tuple(
        AppliedMigration(
            version=m.version,
            name=m.name,
            checksum=m.checksum,
            applied_at="2024-01-01T00:00:00.000000Z",
            run_id="r",
            fingerprint_before=f"before-{m.version}",
            fingerprint_after=f"after-{m.version}",
        )
        for m in registry
        if m.version <= version
    )
    return State(seq=version, version=version, applied=applied)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """BASIC's three SQL migrations and a fourth in Python."""
    return registry_of(tmp_path / "m", {**BASIC, "004_py_step.py": PY_STEP})


class TestPlanUp:
    """`plan_up` applies every migration above the current version up to the target."""

    def test_default_target_is_the_head(self, registry: Registry):
        """From 0 with no target, every migration 1..head is planned in order."""
        plan = plan_up(registry, State())
        assert (plan.direction, plan.from_version, plan.to_version) == ("up", 0, 4)
        assert [s.version for s in plan.steps] == [1, 2, 3, 4]
        assert [s.target_version for s in plan.steps] == [1, 2, 3, 4]
        assert all(s.direction == "up" for s in plan.steps)

    def test_sql_is_split_into_statements_and_python_is_none(self, registry: Registry):
        """SQL steps carry their statements one by one; a Python step carries None."""
        steps = plan_up(registry, State()).steps
        assert steps[0].statements == (
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
            "INSERT INTO items (name) VALUES ('alpha'), ('beta');",
        )
        assert len(steps[1].statements) == 3
        assert steps[3].statements is None
        assert steps[0].transactional and steps[0].foreign_keys

    def test_from_a_middle_version_to_a_target(self, registry: Registry):
        """From 1 to 3 plans exactly 2 and 3."""
        plan = plan_up(registry, state_at(registry, 1), 3)
        assert [s.version for s in plan.steps] == [2, 3]
        assert (plan.from_version, plan.to_version) == (1, 3)

    def test_target_equal_to_current_is_empty(self, registry: Registry):
        """Nothing to do at the target: an empty plan."""
        plan = plan_up(registry, state_at(registry, 4))
        assert plan.empty and plan.steps == ()

    def test_target_above_head_is_refused(self, registry: Registry):
        """A target above the newest migration is a UsageError naming the head."""
        with pytest.raises(UsageError, match="above the newest migration") as info:
            plan_up(registry, State(), 5)
        assert info.value.exit_code == 2

    def test_target_below_current_is_refused(self, registry: Registry):
        """A target below the current version points to `down`."""
        with pytest.raises(UsageError, match="below the current version") as info:
            plan_up(registry, state_at(registry, 3), 1)
        assert "down" in (info.value.hint or "")

    def test_planning_is_pure(self, registry: Registry):
        """The same registry and state give equal plans, and neither is changed."""
        state = state_at(registry, 1)
        assert plan_up(registry, state) == plan_up(registry, state)
        assert state == state_at(registry, 1)


class TestPlanDown:
    """`plan_down` reverts applied migrations newest first, down to the target."""

    def test_steps_newest_first_with_expected_fingerprints(self, registry: Registry):
        """Each step targets version - 1 and expects the schema recorded before its `up`."""
        plan = plan_down(registry, state_at(registry, 4), 1)
        assert (plan.direction, plan.from_version, plan.to_version) == ("down", 4, 1)
        assert [s.version for s in plan.steps] == [4, 3, 2]
        assert [s.target_version for s in plan.steps] == [3, 2, 1]
        assert [s.expect_fingerprint for s in plan.steps] == ["before-4", "before-3", "before-2"]
        assert plan.steps[0].statements is None
        assert plan.steps[1].statements == ("ALTER TABLE items DROP COLUMN note;",)

    def test_step_without_applied_record_expects_nothing(self, registry: Registry):
        """A version the journal has no record of (e.g. a baseline) gets no schema check."""
        plan = plan_down(registry, State(version=2), 0)
        assert [s.expect_fingerprint for s in plan.steps] == [None, None]

    def test_target_equal_to_current_is_empty(self, registry: Registry):
        """Reverting to the current version plans nothing."""
        assert plan_down(registry, state_at(registry, 2), 2).empty

    @pytest.mark.parametrize("target", [-1, 3])
    def test_target_outside_range_is_refused(self, registry: Registry, target: int):
        """A target below 0 or above the current version is a UsageError."""
        with pytest.raises(UsageError, match="not between 0 and the current version"):
            plan_down(registry, state_at(registry, 2), target)

    def test_not_reversible_names_every_migration_without_down(self, tmp_path: Path):
        """NotReversible (exit 2) lists each migration on the way that has no `down`."""
        files = {
            "001_a.sql": "-- migrate:up\nCREATE TABLE a (x);",
            "002_b.sql": "-- migrate:up\nCREATE TABLE b (x);\n-- migrate:down\nDROP TABLE b;",
            "003_c.py": 'up = "CREATE TABLE c (x);"\n',
        }
        registry = registry_of(tmp_path / "m", files)
        with pytest.raises(NotReversible) as info:
            plan_down(registry, state_at(registry, 3), 0)
        assert info.value.exit_code == 2
        assert "001_a.sql" in info.value.what and "003_c.py" in info.value.what
        assert "002_b.sql" not in info.value.what
        with pytest.raises(NotReversible, match=r"003_c\.py"):
            plan_down(registry, state_at(registry, 3), 2)
        assert [s.version for s in plan_down(registry, state_at(registry, 2), 1).steps] == [2]

    def test_missing_file_is_not_reversible(self, tmp_path: Path):
        """A version the registry does not hold cannot be reverted and is named by number."""
        registry = registry_of(tmp_path / "m", {"001_a.sql": BASIC["001_create_items.sql"]})
        with pytest.raises(NotReversible, match="version 2"):
            plan_down(registry, State(version=2), 0)


class TestTransactionControl:
    """Statements that control the transaction are refused in transactional migrations."""

    @pytest.mark.parametrize(
        "statement",
        ["COMMIT;", "begin immediate;", "END;", "ROLLBACK;", "SAVEPOINT x;", "RELEASE x;"],
    )
    def test_refused_in_up(self, tmp_path: Path, statement: str):
        """MigrationFileError (exit 2) naming the file and the keyword."""
        registry = registry_of(
            tmp_path / "m", {"001_a.sql": f"-- migrate:up\nCREATE TABLE a (x);\n{statement}"}
        )
        with pytest.raises(MigrationFileError) as info:
            plan_up(registry, State())
        assert info.value.exit_code == 2
        assert "001_a.sql" in info.value.what
        assert statement.split()[0].rstrip(";").upper() in info.value.what

    def test_refused_in_down(self, tmp_path: Path):
        """A COMMIT in `down` is refused when planning the downgrade."""
        registry = registry_of(
            tmp_path / "m",
            {
                "001_a.sql": "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\nCOMMIT;"
            },
        )
        plan_up(registry, State())  # up alone is fine
        with pytest.raises(MigrationFileError):
            plan_down(registry, state_at(registry, 1), 0)

    def test_words_inside_statements_are_not_refused(self, tmp_path: Path):
        """BEGIN/END inside a trigger body and 'commit' in a string are ordinary SQL."""
        registry = registry_of(
            tmp_path / "m",
            {
                "001_a.sql": """
                    -- migrate:up
                    CREATE TABLE a (x TEXT DEFAULT 'commit');
                    CREATE TRIGGER a_t AFTER INSERT ON a BEGIN SELECT 1; END;
                    """
            },
        )
        assert len(plan_up(registry, State()).steps[0].statements) == 2

    def test_allowed_in_non_transactional_migration(self, tmp_path: Path):
        """A `transaction:false` migration may hold BEGIN and COMMIT."""
        registry = registry_of(
            tmp_path / "m",
            {"001_a.sql": "-- migrate:up transaction:false\nBEGIN;\nCREATE TABLE a (x);\nCOMMIT;"},
        )
        step = plan_up(registry, State()).steps[0]
        assert step.statements == ("BEGIN;", "CREATE TABLE a (x);", "COMMIT;")
        assert step.transactional is False


class TestPlanProperties:
    """Whatever the current version and target, plans cover exactly the versions between."""

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_up_then_down_cover_the_same_versions(self, data, tmp_path_factory):
        """plan_up(current→target) applies current+1..target; plan_down(target→current) reverts them."""
        directory = tmp_path_factory.mktemp("m")
        head = data.draw(st.integers(1, 6), label="head")
        files = {
            f"{v:03d}_m{v}.sql": f"-- migrate:up\nCREATE TABLE t{v} (x);\n-- migrate:down\nDROP TABLE t{v};"
            for v in range(1, head + 1)
        }
        registry = registry_of(directory, files)
        current = data.draw(st.integers(0, head), label="current")
        target = data.draw(st.integers(current, head), label="target")
        up = plan_up(registry, state_at(registry, current), target)
        assert [s.version for s in up.steps] == list(range(current + 1, target + 1))
        down = plan_down(registry, state_at(registry, target), current)
        assert [s.version for s in down.steps] == list(range(target, current, -1))
        assert [s.target_version for s in down.steps] == [v - 1 for v in range(target, current, -1)]

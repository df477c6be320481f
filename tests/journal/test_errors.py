"""Tests for journal.errors: the error hierarchy and its one-line messages."""

from __future__ import annotations

import pytest

from schemalog.journal.errors import (
    JournalChainBroken,
    JournalCorrupt,
    JournalError,
    JournalLayoutError,
    JournalsDiverged,
    JournalUnavailable,
    SchemalogError,
)


class TestJournalUnavailable:
    def test_an_unwritable_jsonl_is_not_for_a_human(self):
        """A JSONL that cannot be written (disk full) exits 1: the next command mirrors it."""
        err = JournalUnavailable("cannot append")
        assert not isinstance(err, JournalError)
        assert err.exit_code == 1


class TestSchemalogError:
    def test_message_has_what_state_and_next_step(self):
        """The message joins what failed, the state now and the next step."""
        err = SchemalogError("it broke", state="db untouched", hint="run x", path="/p")
        assert str(err) == "it broke; db untouched; next: run x"
        assert (err.what, err.state, err.hint, err.path) == (
            "it broke",
            "db untouched",
            "run x",
            "/p",
        )

    def test_message_without_hint_has_no_next_step(self):
        """Without a hint the message stops after the state (the class default)."""
        err = SchemalogError("it broke")
        assert str(err) == "it broke; the database was not changed"
        assert err.exit_code == 1

    def test_empty_state_is_left_out(self):
        """An empty state is not printed as an empty clause."""
        assert SchemalogError("x", state="").message == "x"

    @pytest.mark.parametrize(
        "cls",
        [
            JournalCorrupt,
            JournalChainBroken,
            JournalsDiverged,
            JournalLayoutError,
        ],
    )
    def test_journal_errors_need_a_human(self, cls):
        """Every journal error is a SchemalogError with exit code 4 and its own default state."""
        err = cls("bad")
        assert isinstance(err, JournalError)
        assert isinstance(err, SchemalogError)
        assert err.exit_code == 4
        assert str(err) == "bad; nothing was changed"

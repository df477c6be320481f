"""Tests for journal.codec: the one canonical JSON encoding of events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.journal import codec
from schemalog.journal.chain import GENESIS, find_break, seal
from schemalog.journal.codec import canonical, decode, encode, unstructure
from schemalog.journal.errors import JournalCorrupt
from schemalog.journal.events import Draft, Event, Kind
from tests.journal.strategies import TS, drafts, json_objects


def _event(**data) -> Event:
    return seal(Draft("42", Kind.STEP_APPLIED, 2, data), seq=1, prev=GENESIS, ts=TS)


class TestCanonical:
    def test_sorted_keys_and_no_whitespace(self):
        """Keys come out sorted and without any whitespace between tokens."""
        assert canonical({"b": [1, 2], "a": {"y": None, "x": True}}) == (
            '{"a":{"x":true,"y":null},"b":[1,2]}'
        )

    def test_unicode_is_not_escaped(self):
        """Non-ASCII text is written as UTF-8, not as \\u escapes."""
        assert canonical({"k": "é☃𝄞"}) == '{"k":"é☃𝄞"}'

    @given(json_objects)
    @settings(max_examples=50)
    def test_canonical_is_a_fixed_point_of_json(self, obj):
        """Parsing canonical JSON and encoding it again gives the same text."""
        text = canonical(obj)
        assert canonical(json.loads(text)) == text


class TestEncode:
    def test_encode_is_one_line_of_canonical_json(self):
        """An encoded event has no newline and equals the canonical JSON of its fields."""
        event = _event(note="line\nbreak")
        text = encode(event)
        assert "\n" not in text
        assert text == canonical(unstructure(event))

    def test_unstructure_gives_plain_values(self):
        """`unstructure` turns the kind into its string value and keeps every field."""
        event = _event(a=1)
        raw = unstructure(event)
        assert raw["kind"] == "step_applied"
        assert isinstance(raw["kind"], str)
        assert set(raw) == {
            "seq",
            "id",
            "ts",
            "run_id",
            "kind",
            "version",
            "data",
            "prev",
            "hash",
        }


class TestRoundTrip:
    @pytest.mark.parametrize("kind", list(Kind))
    @given(draft=drafts(), seq=st.integers(min_value=1, max_value=2**40))
    @settings(max_examples=15)
    def test_decode_inverts_encode_for_every_kind(self, kind, draft, seq):
        """decode(encode(e)) == e for every kind, any JSON-able data and version None or int."""
        event = seal(Draft(draft.run_id, kind, draft.version, draft.data), seq=seq, prev=GENESIS)
        text = encode(event)
        assert decode(text) == event
        assert encode(decode(text)) == text


class TestDecodeRejects:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            "not json",
            "{}",
            '{"seq":1}',
            '{"seq":1',
        ],
    )
    def test_non_events_are_corrupt(self, text):
        """Text that is not JSON, or JSON that is not an event, raises JournalCorrupt."""
        with pytest.raises(JournalCorrupt, match="where-7 is not a valid event"):
            decode(text, where="where-7")

    @pytest.mark.parametrize("text", ["null", "1", "[]", '"x"'])
    def test_json_that_is_not_an_object_is_corrupt(self, text):
        """A line holding valid JSON that is not an object raises JournalCorrupt."""
        with pytest.raises(JournalCorrupt, match="where-7 is not a valid event"):
            decode(text, where="where-7")

    def test_extra_key_is_corrupt(self):
        """A line with a field the event does not have is rejected."""
        raw = unstructure(_event())
        raw["extra"] = 1
        with pytest.raises(JournalCorrupt, match="not a valid event"):
            decode(canonical(raw))

    def test_unknown_kind_is_corrupt(self):
        """A line whose kind is not a Kind is rejected."""
        raw = unstructure(_event())
        raw["kind"] = "step_exploded"
        with pytest.raises(JournalCorrupt, match="not a valid event"):
            decode(canonical(raw))

    def test_data_that_is_not_an_object_is_corrupt(self):
        """A line whose data is a list, not an object, is rejected."""
        raw = unstructure(_event())
        raw["data"] = [1, 2]
        with pytest.raises(JournalCorrupt, match="not a valid event"):
            decode(canonical(raw))

    @pytest.mark.parametrize(
        "respell",
        [
            lambda t: t.replace(",", ", ", 1),
            lambda t: " " + t,
            lambda t: t + " ",
            lambda t: json.dumps(json.loads(t), sort_keys=True, separators=(",", ":")),
            lambda t: json.dumps(
                dict(reversed(json.loads(t).items())), separators=(",", ":"), ensure_ascii=False
            ),
        ],
        ids=["space-after-comma", "leading-space", "trailing-space", "ascii-escaped", "unsorted"],
    )
    def test_non_canonical_spelling_is_rejected(self, respell):
        """Valid JSON of the same event, spelled differently from the canonical form, is rejected."""
        text = encode(_event(note="é☃"))
        other = respell(text)
        assert other != text
        assert json.loads(other) == json.loads(text)
        with pytest.raises(JournalCorrupt, match="not in canonical form"):
            decode(other)

    def test_corrupt_error_has_a_hint(self):
        """The error tells the user where to look next."""
        with pytest.raises(JournalCorrupt) as info:
            decode("nope", where="x line 3")
        assert "x line 3" in str(info.value)
        assert info.value.hint
        assert info.value.exit_code == 4

    def test_short_reason_of_an_empty_exception_is_its_type(self):
        """An exception without a message is named by its type in the error text."""
        assert codec._short(ValueError()) == "ValueError"
        assert codec._short(ValueError("a\nb")) == "a"

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ('"seq":1,', '"seq":true,'),
            ('"version":2}', '"version":2.0}'),
            ('"version":2}', '"version":2.5}'),
            ('"run_id":"42"', '"run_id":42'),
        ],
        ids=["seq-as-bool", "version-as-float", "version-fraction", "run_id-as-number"],
    )
    def test_type_changed_values_are_rejected(self, old, new):
        """A line whose values were retyped (still canonical JSON) is rejected, not coerced back."""
        event = _event()
        text = encode(event)
        assert old in text
        tampered = text.replace(old, new)
        try:
            decoded = decode(tampered)
        except JournalCorrupt:
            return
        # Accepted: then at least the chain must notice the edit.
        assert find_break([decoded]) is not None

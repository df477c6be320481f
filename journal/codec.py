"""JSON for events: one canonical encoding, used for the JSONL, the table and the hash.

Canonical JSON: keys sorted, separators `,` and `:`, no whitespace, UTF-8 (not
ASCII-escaped). An encoded line is accepted back only if it is byte for byte
the canonical encoding of what it decodes to, so no change to a line can hide
behind an equivalent spelling.
"""

from __future__ import annotations

import json
from typing import Any

import cattrs

from schemalog.journal.errors import JournalCorrupt
from schemalog.journal.events import Event

__all__ = ["canonical", "converter", "decode", "encode", "unstructure"]

converter = cattrs.Converter(forbid_extra_keys=True)


def _structure_data(value: Any, _type: Any) -> dict[str, Any]:
    # Payloads are plain JSON objects: keep them as parsed (walking every value
    # through cattrs' Any dispatch costs more than the rest of decoding).
    if not isinstance(value, dict):  # keys of a parsed JSON object are always str
        msg = f"event data must be a JSON object, found {type(value).__name__}"
        raise TypeError(msg)
    return value


_DATA = dict[str, Any]
converter.register_structure_hook_func(lambda t: t == _DATA, _structure_data)
converter.register_unstructure_hook_func(lambda t: t == _DATA, lambda value: value)

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(obj: Any) -> str:
    """The canonical JSON text of a plain value (dicts, lists, str, int, bool, None)."""
    return _dumps(obj)


def unstructure(event: Event) -> dict[str, Any]:
    """The event as a plain dict (the shape of a JSONL line and of `--json` output)."""
    return converter.unstructure(event)


def encode(event: Event) -> str:
    """The canonical JSON line of `event`, without the trailing newline."""
    return _dumps(converter.unstructure(event))


def decode(text: str, *, where: str = "") -> Event:
    """The event encoded in `text`; raises JournalCorrupt (naming `where`) if it is not one.

    Read-only. Rejects anything that is not exactly the canonical encoding.
    """
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            msg = f"expected a JSON object, found {type(raw).__name__}"
            raise TypeError(msg)
        event = converter.structure(raw, Event)
    except (ValueError, TypeError, KeyError, cattrs.BaseValidationError) as exc:
        msg = f"journal entry {where} is not a valid event ({_short(exc)})"
        raise JournalCorrupt(
            msg, hint="run `schemalog verify`, then see `schemalog help recovery 'exit 4'`"
        ) from exc
    if encode(event) != text:
        msg = f"journal entry {where} is not in canonical form (it was edited)"
        raise JournalCorrupt(msg, hint="see `schemalog help recovery tampering`")
    return event


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]

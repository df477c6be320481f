"""A `.sql` migration's sections: `-- migrate:up`, `-- migrate:down`, `-- migrate:verify`.

Section headers are case-insensitive; options go on the up line:
`-- migrate:up transaction:false foreign_keys:false`. The leading `--` comment lines before
the first section are the description. The verify section holds one query per statement. A
blank `down` means the migration has no down step. Parsing runs nothing.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.sqlsplit import is_blank_sql, split_statements

__all__ = ["load_sql"]

_SECTION = re.compile(r"^[ \t]*--[ \t]*migrate:(?P<section>\S*)(?P<rest>.*)$", re.IGNORECASE)
_OPTION = re.compile(r"^(?P<key>[a-z_]+):(?P<value>[a-z]+)$", re.IGNORECASE)
_OPTION_KEYS = {
    "transaction": "transactional",
    "transactional": "transactional",
    "foreign_keys": "foreign_keys",
}
_SECTIONS = ("up", "down", "verify")
_SQL_LAYOUT_HINT = (
    "start the file with `-- migrate:up`; then optional `-- migrate:down`, `-- migrate:verify`"
)


@attrs.frozen
class _Section:
    """One `-- migrate:<name>` section of a .sql file, with the 1-based line of its header."""

    name: str
    line: int
    options: str
    body: str


def load_sql(path: Any, text: str) -> dict[str, object]:
    """Parse the sections of a .sql migration's normalised text into Migration fields.

    Raises MigrationFileError naming the file for a bad section layout or option.
    """
    preamble, sections = _sections(path, text)
    if not is_blank_sql("\n".join(preamble)):
        msg = f"{path.name}: SQL before the first `-- migrate:` section"
        raise MigrationFileError(msg, path=str(path), hint=_SQL_LAYOUT_HINT)
    by_name: dict[str, _Section] = {}
    for section in sections:
        if section.name in by_name:
            first = by_name[section.name].line
            msg = (
                f"{path.name}: section `-- migrate:{section.name}` appears twice "
                f"(lines {first} and {section.line})"
            )
            raise MigrationFileError(msg, path=str(path), hint=_SQL_LAYOUT_HINT)
        if section.name != "up" and section.options:
            msg = (
                f"{path.name}: options on line {section.line} "
                f"(`{section.options}`) belong on the `-- migrate:up` line"
            )
            raise MigrationFileError(msg, path=str(path))
        by_name[section.name] = section
    up = by_name.get("up")
    if up is None:
        msg = f"{path.name}: no `-- migrate:up` section"
        raise MigrationFileError(msg, path=str(path), hint=_SQL_LAYOUT_HINT)
    if is_blank_sql(up.body):
        msg = f"{path.name}: the `-- migrate:up` section (line {up.line}) holds no SQL statement"
        raise MigrationFileError(msg, path=str(path))
    down = by_name.get("down")
    verify = by_name.get("verify")
    return {
        "description": _description(preamble),
        "up": up.body.strip(),
        "down": down.body.strip() if down and not is_blank_sql(down.body) else None,
        "verify": tuple(split_statements(verify.body)) if verify else (),
        **_options(path, up),
    }


def _sections(path: Any, text: str) -> tuple[list[str], list[_Section]]:
    """Cut the text into the lines before the first section and the sections themselves."""
    preamble: list[str] = []
    sections: list[_Section] = []
    header: tuple[str, int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        match = _SECTION.match(line)
        if match is None:
            (body if header else preamble).append(line)
            continue
        name = match["section"].lower()
        if name not in _SECTIONS:
            msg = f"{path.name}: unknown section `-- migrate:{match['section']}` on line {number}"
            raise MigrationFileError(msg, path=str(path), hint=_SQL_LAYOUT_HINT)
        if header:
            sections.append(_Section(*header, body="\n".join(body)))
        header, body = (name, number, match["rest"].strip()), []
    if header:
        sections.append(_Section(*header, body="\n".join(body)))
    return preamble, sections


def _options(path: Any, up: _Section) -> dict[str, bool]:
    """Parse `key:value` options of the up line into Migration fields."""
    options: dict[str, bool] = {}
    for token in up.options.split():
        match = _OPTION.match(token)
        field = _OPTION_KEYS.get(match["key"].lower()) if match else None
        value = match["value"].lower() if match else ""
        if field is None or value not in ("true", "false"):
            msg = f"{path.name}: unknown option `{token}` on line {up.line}"
            hint = "allowed: transaction:false, foreign_keys:false (or :true)"
            raise MigrationFileError(msg, path=str(path), hint=hint)
        options[field] = value == "true"
    return options


def _description(preamble: list[str]) -> str:
    """The text of the leading `--` comment lines, markers stripped; blank lines kept inside."""
    lines: list[str] = []
    for line in preamble:
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped[2:].removeprefix(" ").rstrip())
        elif not stripped:
            lines.append("")
    return "\n".join(lines).strip("\n")

"""One migration file: its value (`Migration`) and how it is loaded from disk.

File names are `NNN_name.py` or `NNN_name.sql`: the version is the integer value of the
leading digits (any zero-padding), the name is lower-case letters, digits and `_`.

A `.py` file is executed once, under a private module name that is removed from
`sys.modules` again afterwards; it must define `up` (SQL text or a function taking the
connection) and may define `down` (the same, or None), `verify` (one query or a
list/tuple of queries), `transactional` and `foreign_keys` (bools). Its docstring is the
description. Other module-level names are ignored.

A `.sql` file holds sections introduced by `-- migrate:up`, `-- migrate:down` and
`-- migrate:verify` lines (case-insensitive). Options go on the up line:
`-- migrate:up transaction:false foreign_keys:false`. The leading `--` comment lines
before the first section are the description. The verify section holds one query per
statement. In both kinds a blank `down` means the migration has no down step.

Checksum rule: the SHA-256 (hex) of the file's text, where the text is the file's bytes
decoded as UTF-8 with a leading BOM removed, every line ending (CRLF or a lone CR)
replaced by LF, and all whitespace at the very end removed; the text is encoded back to
UTF-8 before hashing. Any change to a statement, a comment, an option or the docstring
changes it; re-saving the file with other line endings, a BOM or a different final
newline does not. The code that runs is compiled from exactly that normalised text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Literal, TypeAlias

import attrs

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.sqlsplit import find_untakeable, is_blank_sql, split_statements

__all__ = [
    "FILENAME_PATTERN",
    "NAME_PATTERN",
    "Migration",
    "StepCode",
    "compute_checksum",
    "load_migration",
    "normalize_source",
    "parse_filename",
]

#: What `up` and `down` hold: an SQL script, or a function run with the connection.
StepCode: TypeAlias = str | Callable[[sqlite3.Connection], None]

#: The name part of a migration file name: lower-case letters, digits and `_`.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]*")
#: The name of a migration file: version digits, `_`, name, and `.py` or `.sql`.
FILENAME_PATTERN = re.compile(rf"^([0-9]+)_({NAME_PATTERN.pattern})\.(py|sql)$")

_MODULE_PREFIX = "_schemalog_migration_"
_BOM = "\ufeff"
_NAME_HINT = "rename it to NNN_name.py or NNN_name.sql (lower-case name, e.g. 003_add_email.py)"


@attrs.frozen(kw_only=True)
class Migration:
    """One migration as loaded from its file; a value, compared by its fields."""

    version: int = attrs.field(validator=attrs.validators.gt(0))
    name: str
    path: Path
    description: str
    up: StepCode
    down: StepCode | None
    verify: tuple[str, ...] = ()
    checksum: str
    transactional: bool = True
    foreign_keys: bool = True

    @property
    def filename(self) -> str:
        """The file's name, e.g. `003_add_email.py`."""
        return self.path.name

    @property
    def has_down(self) -> bool:
        """True when the migration can be reverted (it has a down step)."""
        return self.down is not None

    @property
    def kind(self) -> Literal["py", "sql"]:
        """`"py"` or `"sql"`, from the file's suffix."""
        return "sql" if self.path.suffix == ".sql" else "py"


def parse_filename(filename: str) -> tuple[int, str, Literal["py", "sql"]] | None:
    """Return `(version, name, kind)` for a migration file name, or None if it is not one.

    Reads only the name; the version may be 0 here (callers decide). Never raises.
    """
    match = FILENAME_PATTERN.match(filename)
    if match is None:
        return None
    digits, name, kind = match.groups()
    return int(digits), name, "py" if kind == "py" else "sql"


def normalize_source(raw: bytes) -> str:
    """Return the text a checksum covers (see the module docstring for the rule).

    Raises MigrationFileError (without a path) when `raw` is not valid UTF-8.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not valid UTF-8 (byte {exc.start}: {exc.reason})"
        raise MigrationFileError(msg, hint="save the file as UTF-8") from exc
    text = text.removeprefix(_BOM)
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip()


def compute_checksum(raw: bytes) -> str:
    """Return the SHA-256 hex checksum of a migration file's bytes (see the module docstring).

    Raises MigrationFileError (without a path) when `raw` is not valid UTF-8.
    """
    return _checksum_of(normalize_source(raw))


def _checksum_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_migration(path: Path) -> Migration:
    """Read and load the migration file at `path`, returning its value.

    A `.py` file's top-level code runs once; nothing stays in `sys.modules`.
    Raises MigrationFileError naming the file when its name is not `NNN_name.py|sql`
    with NNN > 0, it cannot be read, it is not UTF-8, or its content is invalid
    (syntax error with its line, exception while loading, missing or empty `up`,
    a wrong type, a bad `.sql` section layout).
    """
    path = Path(path)
    parsed = parse_filename(path.name)
    if parsed is None:
        msg = f"{path.name}: not a migration file name"
        raise MigrationFileError(msg, path=str(path), hint=_NAME_HINT)
    version, name, kind = parsed
    if version <= 0:
        msg = f"{path.name}: version {version} is not allowed; versions start at 1"
        raise MigrationFileError(msg, path=str(path), hint=_NAME_HINT)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path.name}: cannot be read ({exc.strerror or exc})"
        raise MigrationFileError(msg, path=str(path)) from exc
    try:
        text = normalize_source(raw)
    except MigrationFileError as exc:
        msg = f"{path.name}: {exc.what}"
        raise MigrationFileError(msg, path=str(path), hint=exc.hint) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        msg = f"{path.name}: contains a NUL character (line {line})"
        raise MigrationFileError(msg, path=str(path), hint="remove the NUL character")
    checksum = _checksum_of(text)
    fields = _load_python(path, version, text, checksum) if kind == "py" else _load_sql(path, text)
    return Migration(version=version, name=name, path=path, checksum=checksum, **fields)


# --- .py files ---------------------------------------------------------------------------


def _load_python(path: Path, version: int, text: str, checksum: str) -> dict[str, object]:
    """Execute the module text under a private name and check its attributes."""
    module = _execute_module(path, version, text, checksum)
    namespace = vars(module)
    if "up" not in namespace:
        msg = f"{path.name}: defines no `up`"
        hint = 'define up = "SQL ..." or def up(conn): ...'
        raise MigrationFileError(msg, path=str(path), hint=hint)
    up = _step(path, "up", namespace["up"])
    if up is None:
        msg = f"{path.name}: `up` is None; it must be SQL text or a function"
        raise MigrationFileError(msg, path=str(path))
    doc = namespace.get("__doc__")
    return {
        "description": inspect.cleandoc(doc) if isinstance(doc, str) else "",
        "up": up,
        "down": _step(path, "down", namespace.get("down")),
        "verify": _verify(path, namespace.get("verify", ())),
        "transactional": _flag(path, "transactional", namespace.get("transactional", True)),
        "foreign_keys": _flag(path, "foreign_keys", namespace.get("foreign_keys", True)),
    }


def _execute_module(path: Path, version: int, text: str, checksum: str) -> ModuleType:
    """Compile and run `text` as a module at `path`; it is in `sys.modules` only meanwhile."""
    try:
        code = compile(text, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        msg = f"{path.name}: syntax error at line {exc.lineno}: {exc.msg}"
        raise MigrationFileError(msg, path=str(path)) from exc
    module_name = f"{_MODULE_PREFIX}{version}_{checksum[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:  # pragma: no cover - only for suffixes importlib does not know
        msg = f"{path.name}: cannot be loaded as a Python module"
        raise MigrationFileError(msg, path=str(path))
    module = importlib.util.module_from_spec(spec)
    # The module is registered while its code runs (dataclasses, typing and pickle look
    # themselves up there) and never afterwards, whatever happens.
    sys.modules[module_name] = module
    try:
        exec(code, vars(module))
    except (Exception, SystemExit) as exc:
        line = _line_in(path, exc.__traceback__)
        where = f" at line {line}" if line is not None else ""
        msg = f"{path.name}: raised {type(exc).__name__}{where} while loading: {exc}"
        raise MigrationFileError(msg, path=str(path)) from exc
    finally:
        sys.modules.pop(module_name, None)
    return module


def _line_in(path: Path, tb: TracebackType | None) -> int | None:
    """The line of the innermost traceback frame that runs code of `path`, if any."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _step(path: Path, attr: str, value: object) -> StepCode | None:
    """Check an `up`/`down` value: SQL text, a one-argument callable, or None (blank SQL)."""
    if value is None:
        return None
    if isinstance(value, str):
        _refuse_untakeable(path, f"`{attr}`", value)
        if is_blank_sql(value):
            if attr == "up":
                msg = f"{path.name}: `up` holds no SQL statement"
                raise MigrationFileError(msg, path=str(path))
            return None
        return value
    if callable(value):
        _check_signature(path, attr, value)
        return value
    msg = (
        f"{path.name}: `{attr}` must be SQL text or a function taking the connection, "
        f"not {type(value).__name__}"
    )
    raise MigrationFileError(msg, path=str(path))


def _check_signature(path: Path, attr: str, fn: Callable[..., object]) -> None:
    """Refuse a callable that cannot be called with exactly one positional argument."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: accept
        return
    try:
        signature.bind(object())
    except TypeError as exc:
        msg = f"{path.name}: `{attr}` must take one argument, the connection ({exc})"
        hint = f"def {attr}(conn): ..."
        raise MigrationFileError(msg, path=str(path), hint=hint) from exc


def _refuse_untakeable(path: Path, what: str, sql: str) -> None:
    """Refuse SQL text holding a character SQLite cannot take (NUL, lone surrogate)."""
    problem = find_untakeable(sql)
    if problem is not None:
        msg = f"{path.name}: {what} contains {problem}"
        raise MigrationFileError(msg, path=str(path))


def _verify(path: Path, value: object) -> tuple[str, ...]:
    """Check `verify`: one query or a list/tuple of queries; each becomes its statements."""
    items: list[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    elif value is None:
        items = []
    else:
        msg = f"{path.name}: `verify` must be a query or a list of queries, not {type(value).__name__}"
        raise MigrationFileError(msg, path=str(path))
    queries: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            msg = f"{path.name}: `verify` item {index} must be a query string, not {type(item).__name__}"
            raise MigrationFileError(msg, path=str(path))
        _refuse_untakeable(path, f"`verify` item {index}", item)
        statements = split_statements(item)
        if not statements:
            msg = f"{path.name}: `verify` item {index} holds no query"
            raise MigrationFileError(msg, path=str(path))
        queries.extend(statements)
    return tuple(queries)


def _flag(path: Path, attr: str, value: object) -> bool:
    """Check an option that must be exactly True or False."""
    if not isinstance(value, bool):
        msg = f"{path.name}: `{attr}` must be True or False, not {value!r}"
        raise MigrationFileError(msg, path=str(path))
    return value


# --- .sql files --------------------------------------------------------------------------

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


def _load_sql(path: Path, text: str) -> dict[str, object]:
    """Parse the sections of a .sql migration's normalised text."""
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


def _sections(path: Path, text: str) -> tuple[list[str], list[_Section]]:
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


def _options(path: Path, up: _Section) -> dict[str, bool]:
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

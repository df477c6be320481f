"""One migration file: its source (`MigrationFile`, read from the bytes) and its loaded value
(`Migration`, with the code that runs).

File names are `NNN_name.py` or `NNN_name.sql`: the version is the integer value of the
leading digits (any zero-padding), the name is lower-case letters, digits and `_`.

Reading a file (`read_source`) decodes and checksums its bytes and runs nothing. Loading it
(`load_code`) parses a `.sql` file's sections (`engine.files.sql_sections`) or executes a `.py`
file's top level once (`engine.files.python_code`): only when the migration is about to be
planned or tested. The code that runs is compiled from exactly the text the checksum covers.
A file may come from a directory or from an `importlib.resources` Traversable (a package
directory, also inside a zip): its checksum depends only on its bytes.

Checksum rule: the SHA-256 (hex) of the file's text, where the text is the file's bytes
decoded as UTF-8 with a leading BOM removed, every line ending (CRLF or a lone CR)
replaced by LF, and all whitespace at the very end removed; the text is encoded back to
UTF-8 before hashing. Any change to a statement, a comment, an option or the docstring
changes it; re-saving the file with other line endings, a BOM or a different final
newline does not. The code that runs is compiled from exactly that normalised text.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.python_code import check_syntax, literal_verify, load_python
from schemalog.engine.files.sql_sections import load_sql

__all__ = [
    "FILENAME_PATTERN",
    "NAME_PATTERN",
    "Migration",
    "MigrationFile",
    "Source",
    "StepCode",
    "check_without_running",
    "compute_checksum",
    "load_code",
    "load_migration",
    "normalize_source",
    "parse_filename",
    "read_source",
    "verify_queries",
]

#: What `up` and `down` hold: an SQL script, or a function run with the connection.
StepCode: TypeAlias = str | Callable[[sqlite3.Connection], None]
if TYPE_CHECKING:  # importlib.resources costs start-up time; only its protocol is named
    from importlib.resources.abc import Traversable

#: Where a migration file is: a path, or an `importlib.resources` Traversable.
Source: TypeAlias = "Path | Traversable"

#: The name part of a migration file name: lower-case letters, digits and `_`.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]*")
#: The name of a migration file: version digits, `_`, name, and `.py` or `.sql`.
FILENAME_PATTERN = re.compile(rf"^([0-9]+)_({NAME_PATTERN.pattern})\.(py|sql)$")

_BOM = "\ufeff"
_NAME_HINT = "rename it to NNN_name.py or NNN_name.sql (lower-case name, e.g. 003_add_email.py)"


@attrs.frozen(kw_only=True)
class Migration:
    """One migration as loaded from its file; a value, compared by its fields."""

    version: int = attrs.field(validator=attrs.validators.gt(0))
    name: str
    path: Source
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
        return "sql" if self.path.name.endswith(".sql") else "py"


@attrs.frozen(kw_only=True)
class MigrationFile:
    """One migration file as read: its name, its normalised text and its checksum. Holds no
    code; `load_code` makes the `Migration` when it must run."""

    version: int
    name: str
    path: Source
    kind: Literal["py", "sql"]
    checksum: str
    text: str = attrs.field(repr=False)

    @property
    def filename(self) -> str:
        """The file's name, e.g. `003_add_email.py`."""
        return self.path.name


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


def read_source(path: Source, raw: bytes) -> MigrationFile:
    """The migration file at `path` whose bytes are `raw`: name checked, text normalised and
    checksummed; no code runs.

    Raises MigrationFileError naming the file when its name is not `NNN_name.py|sql` with
    NNN > 0, or its text is not UTF-8 or holds a NUL character.
    """
    version, name, kind = _checked_name(path)
    try:
        text = normalize_source(raw)
    except MigrationFileError as exc:
        msg = f"{path.name}: {exc.what}"
        raise MigrationFileError(msg, path=str(path), hint=exc.hint) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        msg = f"{path.name}: contains a NUL character (line {line})"
        raise MigrationFileError(msg, path=str(path), hint="remove the NUL character")
    return MigrationFile(
        version=version, name=name, path=path, kind=kind, checksum=_checksum_of(text), text=text
    )


def _checked_name(path: Source) -> tuple[int, str, Literal["py", "sql"]]:
    """(version, name, kind) of a migration file's name; raises MigrationFileError."""
    parsed = parse_filename(path.name)
    if parsed is None:
        msg = f"{path.name}: not a migration file name"
        raise MigrationFileError(msg, path=str(path), hint=_NAME_HINT)
    if parsed[0] <= 0:
        msg = f"{path.name}: version {parsed[0]} is not allowed; versions start at 1"
        raise MigrationFileError(msg, path=str(path), hint=_NAME_HINT)
    return parsed


def load_code(source: MigrationFile) -> Migration:
    """The loaded migration: a `.sql` file's sections parsed, a `.py` file's top level run once
    (nothing stays in `sys.modules`).

    Raises MigrationFileError naming the file when its content is invalid (syntax error with
    its line, exception while loading, missing or empty `up`, a wrong type, a bad `.sql`
    section layout).
    """
    path, text = source.path, source.text
    if source.kind == "py":
        fields = load_python(path, source.version, text, source.checksum)
    else:
        fields = load_sql(path, text)
    return Migration(
        version=source.version,
        name=source.name,
        path=path,
        checksum=source.checksum,
        **fields,  # type: ignore[arg-type]
    )


def verify_queries(source: MigrationFile) -> tuple[str, ...] | None:
    """The migration's verify queries, found without running any of its code: a `.sql`
    file's verify section, a `.py` file's literal `verify` (None when it has none that can
    be read without running it: see `python_code.literal_verify`).

    Raises MigrationFileError for a `.sql` file whose sections cannot be parsed.
    """
    if source.kind == "sql":
        return tuple(load_sql(source.path, source.text)["verify"])  # type: ignore[arg-type]
    return literal_verify(source.path, source.text)


def check_without_running(source: MigrationFile) -> None:
    """Check what can be checked of a migration's content without running its code: a `.sql`
    file's sections, a `.py` file's syntax. Raises MigrationFileError naming the file."""
    if source.kind == "sql":
        load_sql(source.path, source.text)
    else:
        check_syntax(source.path, source.text)


def load_migration(path: Source) -> Migration:
    """Read and load the migration file at `path` (`read_source`, then `load_code`).

    Raises MigrationFileError naming the file when it cannot be read, and what
    `read_source` and `load_code` raise.
    """
    if isinstance(path, str):
        path = Path(path)
    _checked_name(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path.name}: cannot be read ({exc.strerror or exc})"
        raise MigrationFileError(msg, path=str(path)) from exc
    return load_code(read_source(path, raw))

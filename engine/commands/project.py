"""The project's files: `init` (a commented `schemalog.toml` and the migrations directory)
and `new` (the next numbered migration file, from a template; its name may be free text,
turned into snake_case).

A new migration file is numbered after the highest version on disk and holds a commented
template whose `up` is only a comment: until its author writes SQL there, loading it fails
with "`up` holds no SQL statement" (exit 2, naming the file), so an unfinished migration can
never be applied by accident.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import attrs

from schemalog.engine.base.config import find_config_file
from schemalog.engine.base.errors import ConfigError, UsageError
from schemalog.engine.base.settings import CONFIG_FILE_NAME
from schemalog.engine.files.migration import NAME_PATTERN, parse_filename

__all__ = [
    "CONFIG_TEMPLATE",
    "PY_TEMPLATE",
    "SQL_TEMPLATE",
    "InitResult",
    "init",
    "migration_name",
    "new",
    "next_version",
    "render_config",
    "snake_case",
    "validate_name",
]

_MAX_NAME = 80
_CAMEL_LOWER_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # addEmail -> add_Email
_CAMEL_ACRONYM = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")  # HTTPServer -> HTTP_Server

PY_TEMPLATE = '''\
"""{title}.

Impact: <what this does to existing rows, how long it holds the write lock on a big
table, and what running `down` loses>.
"""

# `up`: SQL text (any number of statements) or a function `def up(conn): ...` taking the
# sqlite3 connection. It runs inside a transaction that schemalog owns: do not write
# BEGIN, COMMIT or ROLLBACK. Until this holds a statement, schemalog refuses the file.
up = """
-- e.g. ALTER TABLE users ADD COLUMN email TEXT;
"""

# `down`: undoes `up` exactly (schemalog compares the schema with the one before `up`).
# Leave it blank, or set `down = None`, when the change cannot be undone.
down = """
-- e.g. ALTER TABLE users DROP COLUMN email;
"""

# `verify`: queries run after `up`, inside its transaction; each must return one row
# whose first column is true, or the migration is rolled back.
verify = [
    # "SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email'",
]

# transactional = False  # for VACUUM and other statements that cannot run in a transaction
# foreign_keys = False   # for table rebuilds; PRAGMA foreign_key_check still runs at the end
'''

SQL_TEMPLATE = """\
-- {title}.
--
-- Impact: <what this does to existing rows, how long it holds the write lock on a big
-- table, and what running `down` loses>.
--
-- Options go on the up line: `-- migrate:up transaction:false foreign_keys:false`.
-- Until the up section holds a statement, schemalog refuses the file.

-- migrate:up
-- e.g. ALTER TABLE users ADD COLUMN email TEXT;

-- migrate:down
-- e.g. ALTER TABLE users DROP COLUMN email;

-- migrate:verify
-- e.g. SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email';
"""

CONFIG_TEMPLATE = """\
# schemalog configuration; every key: `schemalog help configuration`.
# Precedence: command-line flag > SCHEMALOG_* environment variable > this file > default.
# Relative paths are relative to the directory of this file.

database = {database}
migrations = {migrations}

# backup_dir = "{backups_example}"  # default: <database>.backups next to the database
# lock_timeout = 30          # seconds to wait for another run's migration lock
# durability = "normal"      # "full": fsync the JSONL journal after every event
# integrity = "quick"        # check of every backup taken: "quick", "full" or "off"
# retention_count = 10       # backups kept; "none" for no limit
# retention_bytes = "none"   # total size of the backups kept, e.g. "500MB"
# compression = "none"       # backups: "none" or "gzip"
# transaction = "run"        # "run": one commit per run; "step": one commit per migration
# log_format = "auto"        # "auto", "human" or "json" (log lines on stderr)
"""


def _toml_string(value: str) -> str:
    """`value` as a TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def snake_case(text: str) -> str:
    """`text` (free text, CamelCase, accents, punctuation) as snake_case; '' if nothing is left.

    Pure. Accents are folded (`é` -> `e`), CamelCase words are split (`AddEmail` ->
    `add_email`, `HTTPServer` -> `http_server`), every run of other characters becomes one
    `_`, and the result is cut to at most 80 characters at a word boundary.
    """
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = _CAMEL_LOWER_UPPER.sub("_", folded)
    folded = _CAMEL_ACRONYM.sub("_", folded)
    name = re.sub(r"[^a-z0-9]+", "_", folded.casefold()).strip("_")
    if len(name) > _MAX_NAME:
        cut = name[: _MAX_NAME + 1]
        name = cut[: cut.rfind("_")] if "_" in cut else name[:_MAX_NAME]
    return name.rstrip("_")


def migration_name(text: str) -> str:
    """The migration name for `text`: `text` itself when it is snake_case, else `snake_case(text)`.

    The result always matches the file-name rule (`engine.files.migration.NAME_PATTERN`).
    Raises UsageError when `text` holds no letter or digit to name the migration by.
    """
    name = text if NAME_PATTERN.fullmatch(text) and len(text) <= _MAX_NAME else snake_case(text)
    if not name:
        msg = f"migration name {text!r} holds no letter or digit"
        raise UsageError(msg, hint='e.g. `schemalog new "add email to users"`')
    return validate_name(name)


def validate_name(name: str) -> str:
    """Return `name` if it is a valid migration name (snake_case); raise UsageError otherwise.

    The error suggests the snake_case spelling of the name when there is one.
    """
    if NAME_PATTERN.fullmatch(name) and len(name) <= _MAX_NAME:
        return name
    suggestion = snake_case(name)
    msg = (
        f"migration name {name!r} is not snake_case (lower-case letters, digits and _, "
        f"starting with a letter or digit, at most {_MAX_NAME} characters)"
    )
    hint = f"e.g. `schemalog new {suggestion}`" if suggestion else "e.g. `schemalog new add_email`"
    raise UsageError(msg, hint=hint)


def _existing(directory: Path) -> list[tuple[int, str, Path]]:
    """(version, digits, path) of every file in `directory` named like a migration."""
    found = []
    for entry in directory.iterdir():
        parsed = parse_filename(entry.name)
        if parsed is not None:
            found.append((parsed[0], entry.name.split("_", 1)[0], entry))
    return sorted(found)


def next_version(directory: Path) -> int:
    """The version after the highest one named in `directory` (1 when there is none). Reads only."""
    found = _existing(directory)
    return found[-1][0] + 1 if found else 1


def new(directory: Path, name: str, *, sql: bool = False) -> Path:
    """Create the next numbered migration file `NNN_name.py` (or `.sql`) from the template.

    `name` may be free text (`"add widgets"`, `AddEmail`): it becomes snake_case
    (`migration_name`). Numbers are zero-padded to three digits, or to the width the existing
    files use. Never overwrites a file. Raises UsageError for a name with no letter or digit
    and ConfigError when `directory` does not exist.
    """
    name = migration_name(name)
    directory = Path(directory)
    if not directory.is_dir():
        msg = f"migrations directory {directory} does not exist"
        raise ConfigError(
            msg, hint="run `schemalog init` to create it, or set --migrations", path=str(directory)
        )
    found = _existing(directory)
    version = found[-1][0] + 1 if found else 1
    width = max([3, *(len(digits) for _, digits, _ in found)])
    suffix = "sql" if sql else "py"
    path = directory / f"{version:0{width}d}_{name}.{suffix}"
    title = name.replace("_", " ").capitalize()
    template = SQL_TEMPLATE if sql else PY_TEMPLATE
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(template.format(title=title))
    except FileExistsError:  # pragma: no cover - a concurrent `new` took the number
        msg = f"{path} already exists"
        raise UsageError(msg, hint="run `schemalog new` again") from None
    return path


def render_config(*, database: str = "app.db", migrations: str = "migrations") -> str:
    """The text of a commented `schemalog.toml` naming `database` and `migrations`. Pure."""
    return CONFIG_TEMPLATE.format(
        database=_toml_string(database),
        migrations=_toml_string(migrations),
        backups_example=f"{database}.backups",
    )


@attrs.frozen
class InitResult:
    """What `init_project` did."""

    config: Path
    migrations: Path
    migrations_created: bool


def init(
    directory: Path,
    *,
    database: str = "app.db",
    migrations: str = "migrations",
    config: Path | None = None,
) -> InitResult:
    """Write a `schemalog.toml` (or `config`) and create the migrations directory.

    Refuses (UsageError, nothing written) when the config file exists, or when
    `directory` already has a schemalog configuration (`schemalog.toml` or a
    `[tool.schemalog]` table in `pyproject.toml`).
    """
    directory = Path(directory)
    target = Path(config) if config is not None else directory / CONFIG_FILE_NAME
    if not target.is_absolute():
        target = directory / target
    if target.exists():
        msg = f"{target} already exists; init never overwrites a configuration"
        raise UsageError(msg, state="nothing was written", hint=f"edit {target} instead")
    if config is None:
        found = find_config_file(directory)
        if found is not None:
            path, table = found
            msg = f"{path} already configures schemalog in its [{table}] table"
            raise UsageError(msg, state="nothing was written", hint=f"edit {path} instead")
    if not target.parent.is_dir():
        msg = f"directory {target.parent} does not exist"
        raise ConfigError(msg, state="nothing was written", hint="create it first")
    migrations_dir = Path(migrations)
    if not migrations_dir.is_absolute():
        migrations_dir = target.parent / migrations_dir
    if migrations_dir.exists() and not migrations_dir.is_dir():
        msg = f"{migrations_dir} exists and is not a directory"
        raise ConfigError(msg, state="nothing was written", hint="pick another --migrations")
    with target.open("x", encoding="utf-8") as fh:
        fh.write(render_config(database=database, migrations=migrations))
    created = not migrations_dir.exists()
    migrations_dir.mkdir(parents=True, exist_ok=True)
    return InitResult(config=target, migrations=migrations_dir, migrations_created=created)

"""The migrations in a directory, checked against themselves and against the journal.

`load_registry` lists a directory (or an `importlib.resources` Traversable), refuses an
inconsistent set of file names (a bad name, a duplicate version, a version <= 0, a gap), and
reads each file's bytes for its checksum. It runs no migration code: `Registry.migration`
loads a file's code when a migration is to be planned or tested, once per registry.
`check_against_journal` refuses a set of files that disagrees with what the journal says
was applied (a file edited or deleted after it was applied, a file numbered at or below
the applied version that was never applied). Both report every problem they find in one
error whose first line stands on its own.

Reading is `engine.files.listing`'s (with its read cache); loading a directory whose own
stat key is unchanged (no file added, removed or renamed) and whose files are all unchanged,
by the read cache's rule, returns the registry loaded before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from schemalog.engine.base.errors import ConfigError, RegistryError
from schemalog.engine.files.listing import (
    READ_CACHE,
    DirFile,
    as_source,
    candidate_files,
    read_file,
    settled,
    stat_key,
)
from schemalog.engine.files.migration import (
    Migration,
    MigrationFile,
    Source,
    check_without_running,
    load_code,
    parse_filename,
    verify_queries,
)

__all__ = [
    "AppliedRecord",
    "Registry",
    "check_against_journal",
    "check_pending",
    "load_registry",
    "migration_names",
]

_SHORT = 12  # hex digits of a checksum shown in messages


class AppliedRecord(Protocol):
    """What the journal's replay knows about one applied migration."""

    @property
    def version(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def checksum(self) -> str: ...

    @property
    def baselined(self) -> bool: ...

    @property
    def applied_at(self) -> str: ...


#: A registry entry: a file as read (its code not loaded), or an already loaded migration.
Entry = MigrationFile | Migration
#: directory -> (its stat key, (file, stat key) of each migration file, the registry): a
#: registry loaded again from an unchanged directory of unchanged files is the same value.
_REGISTRY_CACHE: dict[
    str, tuple[tuple[int, ...], tuple[tuple[str, tuple[int, ...]], ...], Any]
] = {}


def _sorted_migrations(migrations: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(sorted(migrations, key=lambda m: m.version))


@attrs.frozen
class Registry:
    """The migrations found in one directory, sorted by version; each file's code is loaded
    on first use (`migration`)."""

    directory: Source
    migrations: tuple[Entry, ...] = attrs.field(converter=_sorted_migrations)
    _by_version: Mapping[int, Entry] = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(
            lambda self: {m.version: m for m in self.migrations}, takes_self=True
        ),
    )
    _loaded: dict[int, Migration] = attrs.field(init=False, repr=False, eq=False, factory=dict)

    @property
    def head(self) -> int:
        """The highest version on disk, 0 when there is none."""
        return self.migrations[-1].version if self.migrations else 0

    @property
    def versions(self) -> tuple[int, ...]:
        """Every version on disk, ascending."""
        return tuple(m.version for m in self.migrations)

    def get(self, version: int) -> Entry | None:
        """The file (name, checksum; no code) with `version`, or None."""
        return self._by_version.get(version)

    def migration(self, version: int) -> Migration:
        """The migration with `version`, its code loaded (a `.py` file's top level runs here,
        once per registry). Raises KeyError for an unknown version and MigrationFileError
        naming the file when its content is invalid."""
        loaded = self._loaded.get(version)
        if loaded is None:
            entry = self._by_version[version]
            loaded = entry if isinstance(entry, Migration) else load_code(entry)
            self._loaded[version] = loaded
        return loaded

    def verify_queries(self, version: int) -> tuple[str, ...] | None:
        """The verify queries of `version`, found without running its code (None: a `.py`
        file whose `verify` is not a literal). Raises KeyError, MigrationFileError."""
        entry = self._by_version[version]
        if isinstance(entry, Migration):
            return entry.verify
        return verify_queries(entry)

    def __len__(self) -> int:
        return len(self.migrations)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.migrations)


@attrs.frozen
class _Problem:
    """One thing wrong with the set of migrations: what, how to fix it, which path."""

    what: str
    hint: str
    path: Any


def load_registry(directory: Source | str) -> Registry:
    """List every migration file in `directory`, check their names, read and checksum them.

    `directory` is a path or an `importlib.resources` Traversable. An empty directory is an
    empty registry. Files whose names start with `_` or `.`, sub-directories and files that
    are neither `.py` nor `.sql` are ignored. The set of file names is checked before any
    file is read; no file's code runs. Raises ConfigError when `directory` is missing or not
    a directory, RegistryError listing every badly named file, duplicate version, version
    <= 0 and gap (versions must run 1..N), and MigrationFileError for the first file that
    cannot be read or is not UTF-8 text.
    """
    source = as_source(directory)
    cached = _unchanged_registry(source)
    if cached is not None:
        return cached
    dir_key = None
    if isinstance(source, Path) and os.name == "posix":
        with contextlib.suppress(OSError):  # a missing directory is _listed's to report
            dir_key = stat_key(source)
    files = _listed(source)
    registry = Registry(directory=source, migrations=tuple(read_file(f) for f in files))
    if (
        dir_key is not None
        and settled(dir_key)
        and all(isinstance(f, DirFile) and f.full in READ_CACHE for f in files)
    ):
        entries = tuple((f.full, READ_CACHE[f.full][0]) for f in files)
        _REGISTRY_CACHE[str(source)] = (dir_key, entries, registry)
    return registry


def _unchanged_registry(directory: Source) -> Registry | None:
    """The registry last loaded from `directory` when neither the directory (no file added,
    removed or renamed) nor any of its files changed since, by the read cache's rule."""
    if not isinstance(directory, Path) or os.name != "posix":
        return None
    cached = _REGISTRY_CACHE.get(str(directory))
    if cached is None:
        return None
    dir_key, entries, registry = cached
    try:
        if stat_key(directory) != dir_key:
            return None
        for full, key in entries:
            st = os.stat(full)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != key:
                return None
    except OSError:
        return None
    return registry


def migration_names(directory: Source | str) -> dict[int, str]:
    """{version: name} of the migration files in `directory`, from their names alone: no file
    is read. Raises what `load_registry` raises for the directory and the names."""
    names = {}
    for path in _listed(directory):
        parsed = parse_filename(path.name)
        assert parsed is not None  # _listed refused every other name
        names[parsed[0]] = parsed[1]
    return names


def check_pending(directory: Source | str, versions: Iterable[int]) -> None:
    """Read the files of `versions` and check their content without running any code
    (`migration.check_without_running`). Raises what `load_registry` raises for the
    directory and the names, and MigrationFileError for the first bad file."""
    wanted = set(versions)
    for file in _listed(directory):
        parsed = parse_filename(file.name)
        if parsed is not None and parsed[0] in wanted:
            check_without_running(read_file(file))


def _listed(directory: Source | str) -> list[Any]:
    """The migration files of `directory`, their names checked (see `load_registry`)."""
    directory = as_source(directory)
    if isinstance(directory, Path) and not directory.exists():
        msg = f"migrations directory {directory} does not exist"
        hint = "run `schemalog init` to create it, or set --migrations (SCHEMALOG_MIGRATIONS)"
        raise ConfigError(msg, hint=hint, path=str(directory))
    if not directory.is_dir():
        msg = f"migrations directory {directory} is not a directory"
        hint = "set --migrations (SCHEMALOG_MIGRATIONS) to the directory holding the migrations"
        raise ConfigError(msg, hint=hint, path=str(directory))
    files = candidate_files(directory)
    _raise_if_any(directory, _name_problems(files))
    return files


def _name_problems(files: list[Any]) -> list[_Problem]:
    """Every problem with the names of `files`: bad names, versions <= 0, duplicates, gaps."""
    problems: list[_Problem] = []
    by_version: dict[int, list[Any]] = {}
    for file in files:
        parsed = parse_filename(file.name)
        if parsed is None:
            what = f"{file.name} is not named like a migration (NNN_name.py or NNN_name.sql)"
            hint = (
                "rename it to NNN_name.py or NNN_name.sql (lower-case name, e.g. 003_add_email.py)"
            )
            problems.append(_Problem(what, hint, file))
            continue
        version = parsed[0]
        if version <= 0:
            what = f"{file.name} has version {version}; versions start at 1"
            hint = f"rename it to a version of 1 or more, e.g. 001_{parsed[1]}.{parsed[2]}"
            problems.append(_Problem(what, hint, file))
            continue
        by_version.setdefault(version, []).append(file)
    for version, paths in sorted(by_version.items()):
        if len(paths) > 1:
            names = " and ".join(p.name for p in paths)
            what = f"version {version} is used by more than one file: {names}"
            hint = "give each migration its own number, above the highest one already applied"
            problems.append(_Problem(what, hint, paths[0]))
    problems.extend(_gap_problems(by_version))
    return problems


def _gap_problems(by_version: Mapping[int, list[Any]]) -> list[_Problem]:
    """A problem for each run of missing versions between 1 and the highest version."""
    problems: list[_Problem] = []
    previous = 0
    for version in sorted(by_version):
        if version > previous + 1:
            missing = _versions_text(previous + 1, version - 1)
            after = by_version[version][0]
            if previous:
                before = by_version[previous][0].name
                what = f"{missing} missing between {before} and {after.name}"
            else:
                what = f"{missing} missing before {after.name}; versions start at 1"
            hint = "versions must run 1, 2, 3, ... without gaps: restore or renumber the files"
            problems.append(_Problem(what, hint, after))
        previous = version
    return problems


def _versions_text(first: int, last: int) -> str:
    if first == last:
        return f"version {first} is"
    return f"versions {first}-{last} are"


def check_against_journal(
    registry: Registry, applied: Mapping[int, AppliedRecord], current_version: int
) -> None:
    """Refuse migration files that disagree with the journal; only reads its arguments.

    `applied` maps each applied version to its record; `current_version` is the replayed
    version. Raises RegistryError listing, in version order, every applied migration whose
    file is gone, every applied migration whose file's checksum differs (not checked for a
    baselined record without a checksum), and every file numbered at or below
    `current_version` that was never applied.
    """
    problems: list[tuple[int, _Problem]] = []
    for version, record in sorted(applied.items()):
        migration = registry.get(version)
        if migration is None:
            problems.append((version, _missing_file(registry, record)))
        elif record.baselined and not record.checksum:
            continue
        elif migration.checksum != record.checksum:
            problems.append((version, _edited_file(registry, record, migration)))
    for migration in registry:
        if migration.version <= current_version and migration.version not in applied:
            problems.append((migration.version, _never_applied(migration, current_version)))
    problems.sort(key=lambda item: item[0])
    _raise_if_any(registry.directory, [p for _, p in problems])


def _label(record: AppliedRecord) -> str:
    """`003_add_email`, or `003` when the journal holds no name (an old baseline)."""
    return f"{record.version:03d}_{record.name}" if record.name else f"{record.version:03d}"


def _applied_at(record: AppliedRecord) -> str:
    """` at <time>` when the record says when it was applied."""
    when = getattr(record, "applied_at", "")
    return f" at {when}" if when else ""


def _missing_file(registry: Registry, record: AppliedRecord) -> _Problem:
    file = getattr(record, "file", None) or f"{_label(record)}.py or .sql"
    what = (
        f"migration {_label(record)} was applied{_applied_at(record)} but its file "
        f"({file}) is gone from {registry.directory}"
    )
    hint = "restore the file (e.g. from version control); applied migrations must stay on disk"
    return _Problem(what, hint, registry.directory)


def _edited_file(registry: Registry, record: AppliedRecord, migration: Entry) -> _Problem:
    was, now = record.checksum[:_SHORT] or "(none)", migration.checksum[:_SHORT]
    if migration.name == record.name:
        what = (
            f"{migration.filename} was changed after it was applied{_applied_at(record)} "
            f"(checksum applied {was}, file now {now})"
        )
        hint = "restore the original file, and put the change in a new migration"
    else:
        what = (
            f"version {record.version} was applied as {_label(record)}{_applied_at(record)}, but "
            f"{migration.filename} now holds a different migration (checksum applied {was}, "
            f"file now {now})"
        )
        hint = (
            f"restore {_label(record)}, and renumber {migration.filename} above the highest "
            f"version ({registry.head})"
        )
    return _Problem(what, hint, migration.path)


def _never_applied(migration: Entry, current_version: int) -> _Problem:
    what = (
        f"{migration.filename} was never applied, but the database is already at version "
        f"{current_version}"
    )
    hint = f"renumber it above the head (version {current_version}), keeping versions contiguous"
    return _Problem(what, hint, migration.path)


def _raise_if_any(directory: Source, problems: list[_Problem]) -> None:
    """Raise one RegistryError for all `problems`: the first on line one, the rest below."""
    if not problems:
        return
    first, rest = problems[0], problems[1:]
    what = first.what
    if rest:
        more = "problem" if len(rest) == 1 else "problems"
        what += f" (and {len(rest)} more {more} in {directory}):\n" + "\n".join(
            f"  - {p.what}" for p in rest
        )
    hints = list(dict.fromkeys(p.hint for p in problems))
    raise RegistryError(what, hint="; ".join(hints), path=str(first.path))

"""`schema`: the database's schema in canonical form; written to a file, or compared with one.

The canonical form is `engine.core.schema` (objects by type, then name; each statement
normalised as the fingerprint normalises it; schemalog's own tables left out), so a schema file
committed next to the migrations can be reviewed like code and checked in CI. `schema` only
reads the database (it opens it read-only and never takes the lock); `--output` writes the
schema file (mode 0600, through a temporary file and a rename, never through a symlink).
`built_schema` gives the schema the migrations build from an empty database, on a scratch
database that is removed afterwards (for `schemalog.testing.assert_schema_matches`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import CheckFailed, UsageError
from schemalog.engine.commands.check import scratch_settings
from schemalog.engine.commands.migrate import upgrade
from schemalog.engine.core.schema import Schema, SchemaFileError, parse_schema, read_schema
from schemalog.engine.core.schema_diff import SchemaDiff, diff_schemas
from schemalog.engine.shell.session import Session
from schemalog.journal.durable import fsync_dir, open_private_file, os_reason, refuse_symlink

__all__ = ["SchemaReport", "built_schema", "read_schema_file", "schema", "write_schema_file"]


@attrs.frozen
class SchemaReport:
    """What `schema` found: the objects, and (with a file to compare) how they differ."""

    database: str
    fingerprint: str
    objects: list[dict[str, str]]
    text: str
    output: str | None = None
    compared_with: str | None = None
    differs: bool = False
    diff: list[dict[str, Any]] = attrs.field(factory=list)
    lines: list[str] = attrs.field(factory=list)


def schema(ctx: Context, output: Path | None = None, diff: Path | None = None) -> SchemaReport:
    """The schema of the database; `output` writes it to a file; `diff` compares with one.

    Reads the database only. Raises UsageError when the database does not exist, when both
    `output` and `diff` are given, or when the file to compare cannot be read or is not a
    schema file; CheckFailed (exit 1, `report` attached) when the schema differs from `diff`.
    """
    if output is not None and diff is not None:
        msg = "--output and --diff were both given"
        raise UsageError(msg, hint="compare first (--diff FILE), then write (--output FILE)")
    expected = read_schema_file(diff) if diff is not None else None
    with Session(ctx, command="schema", write=False) as session:
        live = read_schema(session.conn)
    report = SchemaReport(
        database=str(ctx.settings.paths.database),
        fingerprint=live.fingerprint,
        objects=[
            {"type": o.type, "name": o.name, "table": o.table, "sql": o.sql} for o in live.objects
        ],
        text=live.text(),
    )
    if output is not None:
        write_schema_file(output, live)
        return attrs.evolve(report, output=str(output))
    if expected is None:
        return report
    found = diff_schemas(expected, live)
    report = attrs.evolve(
        report,
        compared_with=str(diff),
        differs=bool(found),
        diff=found.to_json(),
        lines=found.lines(),
    )
    if found:
        raise _differs(report, found, str(diff))
    return report


def _differs(report: SchemaReport, found: SchemaDiff, file: str) -> CheckFailed:
    noun = "object differs" if len(found.objects) == 1 else "objects differ"
    error = CheckFailed(
        f"the schema of {report.database} differs from {file}: {len(found.objects)} {noun} "
        f"({found.text(limit=3)})",
        state="nothing was changed",
        hint=f"if the change is intended, write the file again: `schemalog schema --output {file}`",
    )
    error.report = report  # type: ignore[attr-defined]
    return error


def read_schema_file(path: Path) -> Schema:
    """The schema a schema file holds; UsageError (exit 2) when unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        msg = f"cannot read schema file {path}: {reason}"
        raise UsageError(msg, hint="write it with `schemalog schema --output FILE`") from exc
    try:
        return parse_schema(text)
    except SchemaFileError as exc:
        msg = f"{path} is not a schemalog schema file: {exc}"
        raise UsageError(msg, hint="write it with `schemalog schema --output FILE`") from exc


def write_schema_file(path: Path, live: Schema) -> None:
    """Write `live`'s text to `path`: temporary file (0600), fsync, rename, fsync the directory.

    Raises PlantedSymlink when `path` is a symbolic link, UsageError when it cannot be written.
    """
    path = Path(path)
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open_private_file(tmp) as fh:
            fh.write(live.text().encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write schema file {path}: {os_reason(exc)}"
        raise UsageError(msg, state="nothing was written", hint="check the path") from exc


def built_schema(ctx: Context, *, target: int | None = None, workdir: Path | None = None) -> Schema:
    """The schema the migrations build from an empty database (up to `target`, default all).

    Runs them on a scratch database in a temporary directory (under `workdir`) that is removed
    afterwards; the configured database is not read. Raises what `upgrade` raises.
    """
    with tempfile.TemporaryDirectory(prefix="schemalog-schema-", dir=workdir) as tmp:
        scratch = Context(scratch_settings(ctx.settings, Path(tmp)), functions=ctx.functions)
        upgrade(scratch, target)
        if not scratch.settings.paths.database.exists():  # no migration at all
            return Schema()
        with Session(scratch, command="schema", write=False) as session:
            return read_schema(session.conn)

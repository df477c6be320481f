"""How `schema` and `lint` read on a terminal (see `engine.cli.render` for the other commands)."""

from __future__ import annotations

from schemalog.engine.cli.output import Out
from schemalog.engine.commands.lint import LintReport
from schemalog.engine.commands.schema import SchemaReport

__all__ = ["lint", "schema"]


def schema(out: Out, report: SchemaReport) -> None:
    """The schema text; or where it was written; or how it differs from the file."""
    if report.output is not None:
        noun = "object" if len(report.objects) == 1 else "objects"
        out.line(
            f"wrote {report.output} ({len(report.objects)} {noun}, fingerprint {report.fingerprint[:12]})"
        )
        return
    if report.compared_with is None:
        for line in report.text.rstrip("\n").split("\n"):
            out.line(line)
        return
    if not report.differs:
        out.line(f"{report.database} matches {report.compared_with}", "green")
        return
    out.line(f"{report.database} differs from {report.compared_with}:", "bold red")
    for line in report.lines:
        out.line(f"  {line}")


def lint(out: Out, report: LintReport) -> None:
    """The findings, one block each, errors first; then what allow comments silenced."""
    out.line(f"{report.description}: {len(report.migrations)} migration(s)")
    for f in report.findings:
        out.line(
            f"{f.severity:<7} {f.code} {f.file}: {f.message}",
            "bold red" if f.severity == "error" else "yellow",
        )
        if f.statement and f.statement != "python function":
            out.line(f"        {f.statement}")
    for a in report.allowed:
        out.line(f"allowed {a['code']} {a['file']}: {a['reason']}")
    if not report.findings:
        out.line("no findings", "green")
    else:
        out.line(f"lint: {report.errors} error(s), {report.warnings} warning(s)")

"""`schemalog help [TOPIC] [SECTION]`: the documentation shipped inside the package.

The repository's `docs/*.md` install as the data package `schemalog.docs` and are read with
`importlib.resources`, so they are there after `pip install`, in a zip or a frozen bundle.
A topic is a file's name without `.md` (`recovery`, `cli`, `library`, ...). Hints in error
messages point here (`schemalog help recovery`), never at a path of the repository.
"""

from __future__ import annotations

import difflib
import re
import sys
from typing import TYPE_CHECKING

import click

from schemalog.engine.base.errors import UsageError
from schemalog.engine.base.terminal import is_tty

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["help_", "read_topic", "section_of", "topics"]

DOCS_PACKAGE = "schemalog.docs"
_HEADING = re.compile(r"^(#{1,6}) +(.*)$")


def topics() -> dict[str, Traversable]:
    """Every packaged document by topic name, sorted. Reads only."""
    from importlib import resources  # only `help` pays for it

    try:
        root = resources.files(DOCS_PACKAGE)
    except ModuleNotFoundError:  # pragma: no cover - a broken installation
        return {}
    entries = [e for e in root.iterdir() if e.name.endswith(".md") and e.is_file()]
    return {e.name[: -len(".md")]: e for e in sorted(entries, key=lambda e: e.name)}


def title_of(text: str) -> str:
    """The document's first `# ` heading (empty when it has none). Pure."""
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def read_topic(topic: str) -> str:
    """The text of `topic`; raises UsageError naming the topics there are."""
    found = topics()
    if topic not in found:
        close = difflib.get_close_matches(topic, list(found), n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"no help topic {topic!r}{guess}"
        raise UsageError(msg, hint="topics: " + ", ".join(found))
    return found[topic].read_text(encoding="utf-8")


def section_of(text: str, words: str) -> str | None:
    """The first section whose heading contains `words` (any case), with its subsections,
    up to the next heading of the same or a higher level; None when no heading matches. Pure.

    Headings inside fenced code blocks are not headings.
    """
    lines = text.splitlines()
    fenced = False
    start, level = None, 0
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        depth = len(match.group(1))
        if start is None:
            if words.lower() in match.group(2).lower():
                start, level = i, depth
        elif depth <= level:
            return "\n".join(lines[start:i]).rstrip() + "\n"
    if start is None:
        return None
    return "\n".join(lines[start:]).rstrip() + "\n"


@click.command("help")
@click.argument("topic", required=False)
@click.argument("section", required=False)
def help_(topic: str | None, section: str | None) -> None:
    """Show the documentation installed with schemalog: the topics, one topic, or the
    section of a topic whose heading contains SECTION.

    Topics are the guides: recovery (the runbook), authoring, cli, configuration, events,
    library (schemalog inside an application), architecture, and more. On a terminal the
    text goes through a pager.

    \b
    Example:
        schemalog help
        schemalog help recovery
        schemalog help recovery "torn"
    """
    if topic is None:
        found = topics()
        width = max((len(name) for name in found), default=0)
        for name, entry in found.items():
            click.echo(f"{name:<{width}}  {title_of(entry.read_text(encoding='utf-8'))}")
        click.echo("\nnext: schemalog help TOPIC (e.g. schemalog help recovery)")
        return
    text = read_topic(topic)
    if section is not None:
        part = section_of(text, section)
        if part is None:
            headings = [m.group(2) for m in map(_HEADING.match, text.splitlines()) if m]
            msg = f"no section of {topic!r} has {section!r} in its heading"
            raise UsageError(msg, hint="headings: " + "; ".join(headings[:30]))
        text = part
    if is_tty(sys.stdout):
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=not text.endswith("\n"))

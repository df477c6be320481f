"""`schemalog help`: the packaged documentation, topics and sections; hints in the code name
topics that exist, never a repository path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemalog.engine.cli import cli
from schemalog.engine.cli.help import section_of, title_of, topics

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"
SOURCES = [p for root in ("engine", "journal", "schemalog") for p in (REPO / root).rglob("*.py")]


def run(*args: str):
    return CliRunner().invoke(cli, ["help", *args])


class TestHelpCommand:
    def test_lists_every_guide_with_its_title(self):
        """Without a topic: one line per docs/*.md, its name and its first heading."""
        result = run()
        assert result.exit_code == 0
        for doc in sorted(DOCS.glob("*.md")):
            title = title_of(doc.read_text(encoding="utf-8"))
            assert re.search(rf"^{doc.stem} +{re.escape(title)}$", result.output, re.M), doc.name

    @pytest.mark.parametrize(
        "topic",
        ["recovery", "authoring", "cli", "configuration", "events", "architecture", "library"],
    )
    def test_the_required_topics_print_their_guide(self, topic):
        """Each required topic prints its guide exactly as written."""
        result = run(topic)
        assert result.exit_code == 0
        assert result.output == (DOCS / f"{topic}.md").read_text(encoding="utf-8")

    def test_a_section(self):
        """TOPIC SECTION prints the first section whose heading has SECTION, up to the next
        heading of its level."""
        result = run("recovery", "TAMPERING")
        assert result.exit_code == 0
        assert result.output.startswith("### Journals that disagree (tampering)\n")
        assert "\n### " not in result.output

    def test_unknown_topic_is_a_usage_error_with_a_suggestion(self):
        """A misspelt topic exits 2, suggests the closest and lists the topics."""
        result = run("recovry")
        assert result.exit_code == 2
        assert "did you mean 'recovery'" in result.output
        assert "topics: architecture" in result.output

    def test_unknown_section_lists_the_headings(self):
        """A section no heading has exits 2 listing the headings."""
        result = run("recovery", "no such heading")
        assert result.exit_code == 2
        assert "Crash windows" in result.output

    def test_topics_come_from_the_package(self):
        """The topics are read through importlib.resources from schemalog.docs."""
        found = topics()
        assert set(found) == {p.stem for p in DOCS.glob("*.md")}
        assert found["recovery"].read_text(encoding="utf-8").startswith("# Recovery runbook")


class TestSectionOf:
    TEXT = "# T\nintro\n## A b\none\n```\n# not a heading\n```\n### A1\nsub\n## C\nthree\n"

    def test_section_with_subsections(self):
        """A section runs to the next heading of its level, subsections included; a `#` line
        inside a code block is not a heading."""
        assert (
            section_of(self.TEXT, "a B") == "## A b\none\n```\n# not a heading\n```\n### A1\nsub\n"
        )

    def test_last_section_runs_to_the_end(self):
        """The last section ends with the text."""
        assert section_of(self.TEXT, "c") == "## C\nthree\n"

    def test_no_match(self):
        """No heading with the words gives None."""
        assert section_of(self.TEXT, "zzz") is None


class TestHintsPointAtHelp:
    @pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
    def test_no_repository_paths(self, path: Path):
        """No hint or docstring points at docs/*.md or DESIGN.md, which pip does not install."""
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"docs/[\w-]+\.md|DESIGN\.md", text)

    def test_every_named_topic_exists(self):
        """Every `schemalog help TOPIC [SECTION]` in the code names a topic and a section
        that exist."""
        named = set()
        for path in SOURCES:
            for topic, quoted, word in re.findall(
                r"schemalog help ([a-z]+)(?: '([^']+)'| ([a-z]+))?", path.read_text()
            ):
                named.add((topic, quoted or word))
        assert ("recovery", "") in named and len(named) > 3
        found = topics()
        for topic, section in named:
            assert topic in found, topic
            if section:
                text = found[topic].read_text(encoding="utf-8")
                assert section_of(text, section) is not None, (topic, section)

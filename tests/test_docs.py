"""The documentation keeps up with the code: every CLI command and option is documented, every
--help ends with an example, every setting is in the configuration guide, and the README
starts with the two commands a newcomer runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from schemalog.engine.base.settings import ENV_PREFIX, SETTING_NAMES
from schemalog.engine.cli import cli

REPO = Path(__file__).resolve().parents[1]
CLI_DOC = REPO / "docs" / "cli.md"
CONFIG_DOC = REPO / "docs" / "configuration.md"
README = REPO / "README.md"


def walk(group: click.Group, path: tuple[str, ...] = ()):
    """Every (path, command) below `group`, groups included, depth first."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root loads its commands by name
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


COMMANDS = list(walk(cli))
IDS = [" ".join(path) for path, _ in COMMANDS]


def section(path: tuple[str, ...]) -> str:
    """The part of docs/cli.md under the heading of `schemalog <path>`, up to the next heading."""
    text = CLI_DOC.read_text(encoding="utf-8")
    heading = re.compile(r"^#{2,4} `schemalog " + re.escape(" ".join(path)) + r"[ `]", re.M)
    match = heading.search(text)
    if match is None:
        return ""
    rest = text[match.end() :]
    following = re.search(r"^#{2,4} ", rest, re.M)
    return rest[: following.start()] if following else rest


def test_the_walk_finds_the_contract_commands():
    """The walk sees nested commands (so the other tests cover them)."""
    assert {"status", "backup create", "backup restore", "lock break"} <= set(IDS)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_is_documented(path, command):
    """docs/cli.md has a heading for every command, with its options (leaf commands)."""
    if isinstance(command, click.Group):
        assert f"schemalog {' '.join(path)}" in CLI_DOC.read_text(encoding="utf-8")
        return
    body = section(path)
    assert body, f"docs/cli.md has no heading for `schemalog {' '.join(path)}`"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert longest in body, f"`schemalog {' '.join(path)}`: {longest} is not documented"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_help_ends_with_an_example(path, command):
    """Every command's --help ends with an Example naming the command."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output, f"`schemalog {' '.join(path)} --help` has no example"
    example = result.output.split("Example:", 1)[1]
    assert "schemalog" in example
    assert "Options:" not in example or example.index("schemalog") < example.index("Options:")


def test_global_options_are_documented():
    """Every global option appears in the global options section."""
    body = CLI_DOC.read_text(encoding="utf-8").split("## Global options", 1)[1].split("\n## ")[0]
    for param in cli.params:
        if isinstance(param, click.Option) and param.name not in ("help",):
            longest = max(param.opts, key=len)
            assert longest in body, f"global option {longest} is not documented"


def test_root_help_has_an_example():
    """`schemalog --help` ends with an example too."""
    result = CliRunner().invoke(cli, ["--help"])
    assert "Example:" in result.output


def test_exit_codes_are_documented():
    """The exit code table lists 0 to 4."""
    text = CLI_DOC.read_text(encoding="utf-8")
    for code in range(5):
        assert re.search(rf"^\| {code} \|", text, re.M), f"exit code {code} is not documented"


def test_json_examples_parse():
    """Every ```json block in the docs is valid JSON."""
    for doc in (CLI_DOC, CONFIG_DOC):
        for block in re.findall(r"```json\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            json.loads(block)


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_setting_is_documented(name):
    """docs/configuration.md names every setting and its environment variable."""
    text = CONFIG_DOC.read_text(encoding="utf-8")
    assert f"`{name}`" in text
    assert f"{ENV_PREFIX}{name.upper()}" in text


def test_readme_starts_with_make_demo_and_make_test():
    """README.md exists, and the first commands it shows are `make demo` then `make test`."""
    assert README.is_file(), "README.md is missing"
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip().removeprefix("$ ")  # drop trailing comments
            if line and not line.startswith("#"):
                commands.append(line)
    assert commands[:2] == ["make demo", "make test"], commands[:2]

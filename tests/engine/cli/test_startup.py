"""What a command imports at start-up: its own command module, and no stdlib module it
does not use (each costs every cold start; docs/benchmarks.md has the figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_python
from tests.faults.world import clean_env

PROBE = """
import json, sys
from schemalog.engine.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
json.dump(sorted(sys.modules), sys.stderr)
"""

#: Loaded only by the commands that use them (compressed backups, config files, Windows...).
NOT_AT_START = ["gzip", "shutil", "tempfile", "tomllib", "decimal", "difflib", "lzma", "bz2"]


def loaded(tmp_path: Path, *args: str) -> list[str]:
    """The modules loaded after `schemalog ARGS` ran in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=clean_env(),  # without coverage's start-up hook: it imports tomllib and more
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["status", "--json"], ["history"]])
def test_a_read_command_loads_only_its_own_module(tmp_path: Path, args: list[str]):
    (tmp_path / "migrations").mkdir()
    modules = loaded(tmp_path, "--database", str(tmp_path / "app.db"), *args)
    commands = [m for m in modules if m.startswith("schemalog.engine.cli.")]
    assert set(commands) <= {
        "schemalog.engine.cli.app",
        "schemalog.engine.cli.inspect",
        "schemalog.engine.cli.output",
        "schemalog.engine.cli.render",
    }
    assert "schemalog.engine.cli.inspect" in commands
    assert [m for m in NOT_AT_START if m in modules] == []
    if os.name != "nt":
        assert "socket" not in modules


def test_help_still_lists_every_command(tmp_path: Path):
    from schemalog.engine.cli import COMMANDS

    done = run_python(tmp_path, "-m", "schemalog", "--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:", 1)[1].split()
    assert [name for name in sorted(COMMANDS) if name not in listed] == []

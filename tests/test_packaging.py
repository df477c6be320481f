"""What `pip wheel .` builds: one import package with its docs, the console script and the
pytest plugin; and that package working from the wheel as a zip on `sys.path` (as in a
zipapp): `schemalog help` reads the docs through importlib.resources, `up` migrates."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_python
from tests.engine.conftest import BASIC, write_migrations

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from this checkout (once for this module)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0 and "No matching distribution found for setuptools" in done.stderr:
        pytest.skip("no package index to fetch the build backend from")
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("schemalog-*.whl")
    return built


def from_wheel(wheel: Path, cwd: Path, code: str) -> subprocess.CompletedProcess:
    """Run `code` with only the wheel (as a zip) providing schemalog."""
    return run_python(cwd, "-c", code, pythonpath=wheel, timeout=TIMEOUT_S)


class TestWheel:
    def test_contents(self, wheel: Path):
        """One top-level package; every guide in schemalog/docs; py.typed; the console script
        and the pytest11 entry point."""
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
            points = configparser.ConfigParser()
            points.read_string(z.read(entry_points).decode())
        assert {n.split("/")[0] for n in names} == {"schemalog", entry_points.split("/")[0]}
        for doc in REPO.glob("docs/*.md"):
            assert f"schemalog/docs/{doc.name}" in names, doc.name
        assert "schemalog/py.typed" in names
        assert "schemalog/pytest_plugin.py" in names
        assert points["console_scripts"]["schemalog"] == "schemalog.engine.cli:main"
        assert points["pytest11"]["schemalog"] == "schemalog.pytest_plugin"

    def test_help_reads_the_docs_from_the_zip(self, wheel: Path, tmp_path: Path):
        """From the zipped wheel, outside the repository, `schemalog help recovery` prints the
        packaged guide."""
        code = (
            "import schemalog, sys; assert '.whl' in schemalog.__file__, schemalog.__file__\n"
            "from schemalog.engine.cli import main; main(['help', 'recovery'])"
        )
        done = from_wheel(wheel, tmp_path, code)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (REPO / "docs" / "recovery.md").read_text(encoding="utf-8")

    def test_up_runs_from_the_zip(self, wheel: Path, tmp_path: Path):
        """The library imports and migrates from a zip (nothing needs a file on disk)."""
        write_migrations(tmp_path / "migrations", BASIC)
        code = (
            "from schemalog import Migrator\n"
            "report = Migrator(database='app.db', migrations='migrations').upgrade()\n"
            "print(report.plan.to_version)"
        )
        done = from_wheel(wheel, tmp_path, code)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "3"

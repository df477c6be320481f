"""docs/library.md's examples run: every ```python test block as a script, the ```python pytest
block as a test file under the plugin, each in a fresh directory with `migrations/` and a
package `myapp/` holding the same migrations (the doc says so). The packaged-migrations
example also runs with `myapp` imported from a zip, where loading from a Traversable exists."""

from __future__ import annotations

import re
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_python

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "library.md"

MIGRATIONS = {
    "001_create_users.py": '''
        """Users."""
        up = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
        down = "DROP TABLE users;"
        verify = ["SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'users'"]
        ''',
    "002_add_email.py": '''
        """An email per user, empty at first."""
        up = "ALTER TABLE users ADD COLUMN email TEXT;"
        down = "ALTER TABLE users DROP COLUMN email;"
        ''',
}


def blocks() -> list[tuple[str, str, str]]:
    """(id, marker, code) of every marked python block, ids from the section it is in."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(
        r"^```python (test(?: packaged)?|pytest)\n(.*?)^```$", text, re.M | re.S
    ):
        heading = re.findall(r"^## (.+)$", text[: match.start()], re.M)[-1]
        slug = re.sub(r"[^a-z]+", "-", heading.lower()).strip("-")
        found.append((f"{slug}-{len(found)}", match.group(1), match.group(2)))
    return found


BLOCKS = blocks()


def write_migrations(directory: Path) -> None:
    directory.mkdir(parents=True)
    for name, text in MIGRATIONS.items():
        (directory / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")


def workdir(tmp_path: Path) -> Path:
    """What the doc's examples assume: `migrations/` and the package `myapp/`."""
    write_migrations(tmp_path / "migrations")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text('"""The application."""\n')
    write_migrations(tmp_path / "myapp" / "migrations")
    return tmp_path


def test_the_guide_has_examples_of_each_kind():
    """The guide has run examples: several scripts, the packaged one and a pytest file."""
    markers = [marker for _, marker, _ in BLOCKS]
    assert markers.count("test") >= 6
    assert markers.count("test packaged") == 1
    assert markers.count("pytest") == 1


@pytest.mark.parametrize(("marker", "code"), [b[1:] for b in BLOCKS], ids=[b[0] for b in BLOCKS])
def test_example_runs(tmp_path: Path, marker: str, code: str):
    """The example runs to its end (its asserts hold) in a directory as the guide describes."""
    cwd = workdir(tmp_path / "app")
    if marker == "pytest":
        (cwd / "pytest.ini").write_text("[pytest]\nschemalog_migrations = migrations\n")
        (cwd / "test_example.py").write_text(code, encoding="utf-8")
        done = run_python(cwd, "-m", "pytest", "-q", "-p", "no:cacheprovider")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "5 passed" in done.stdout  # the example, file_set, upgrade, 2 round trips
        return
    (cwd / "example.py").write_text(code, encoding="utf-8")
    done = run_python(cwd, "example.py")
    assert done.returncode == 0, done.stdout + done.stderr
    if marker != "test packaged":
        return
    # The same example with `myapp` imported from a zip (nothing of it on disk).
    zipped = workdir(tmp_path / "zipped")
    with zipfile.ZipFile(zipped / "app.zip", "w") as z:
        for path in sorted((zipped / "myapp").rglob("*")):
            z.write(path, path.relative_to(zipped).as_posix())
    shutil.rmtree(zipped / "myapp")
    (zipped / "example.py").write_text(code, encoding="utf-8")
    done = run_python(zipped, "example.py", pythonpath=zipped / "app.zip")
    assert done.returncode == 0, done.stdout + done.stderr

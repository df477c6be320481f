"""The tools under test: how to install each, write a migration set in its format, run it.

Each tool is a `Tool` with three duties, kept apart so that only `command()` is timed:

- `setup(envs)` installs the tool in its own environment under `bench/.envs/` (never in
  the project's venv) and returns None, or a note saying why the tool is skipped;
- `write(migrations, folder, db)` writes the set in the tool's own format (plus any
  config the tool needs, pointing at `db`);
- `command(folder, db)` is the exact argv the harness times, run with `cwd=folder`.

Standard library only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from generate import Migration

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
SCHEMALOG = PROJECT / ".venv" / "bin" / "schemalog"


def _width(migrations: list[Migration], minimum: int) -> int:
    return max(minimum, len(str(len(migrations))))


def _check_sql(m: Migration) -> None:
    """Raise ValueError when `m` holds text that a writer below cannot embed verbatim."""
    for bad in ('"""', "\\"):
        if bad in m.sql or bad in m.down_sql:
            msg = f"migration {m.version} holds {bad!r}, which the .py writers cannot embed"
            raise ValueError(msg)


def _run(
    argv: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> bool:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(map(str, argv))}\n".encode())
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        return done.returncode == 0


def _venv(envs: Path, name: str, packages: list[str], log: Path) -> str | None:
    """Create `envs/name` with `packages` unless it already has them; a note on failure."""
    env = envs / name
    stamp = env / ".bench-installed"
    if stamp.exists() and stamp.read_text() == " ".join(packages):
        return None
    shutil.rmtree(env, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    if not _run([base, "-m", "venv", str(env)], log):
        return f"could not create the venv {env} (see {log})"
    pip = [
        str(env / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    if not _run([*pip, *packages], log):
        return f"pip install {' '.join(packages)} failed (see {log})"
    stamp.write_text(" ".join(packages))
    return None


def _pip_versions(python: Path, names: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", code, *names], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


@dataclass
class Tool:
    """A migration tool as the harness drives it (see the module docstring)."""

    name: str = ""
    #: files or folders next to the database the tool creates; removed before each run
    sidecars: tuple[str, ...] = ()
    #: whether the tool keeps `PRAGMA user_version` equal to the applied version
    sets_user_version: bool = False

    def setup(self, envs: Path, log: Path) -> str | None:
        return None

    def version(self) -> str:
        return ""

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        raise NotImplementedError

    def prepare_db(self, folder: Path, db: Path, log: Path) -> str | None:
        """Untimed step on each fresh copy before the timed run; a note when it fails."""
        return None

    def command(self, folder: Path, db: Path) -> list[str]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------


class Floor(Tool):
    """Bare Python sqlite3: copy + fsync backup, one transaction per migration."""

    def __init__(self) -> None:
        super().__init__("floor", (".bak",), sets_user_version=True)

    def version(self) -> str:
        import sqlite3

        return f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}"

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        w = _width(migrations, 4)
        for m in migrations:
            head = "-- foreign_keys: off\n" if m.foreign_keys_off else ""
            (folder / f"{m.version:0{w}d}_{m.name}.sql").write_text(head + m.sql)

    def command(self, folder: Path, db: Path) -> list[str]:
        return [sys.executable, str(BENCH / "floor.py"), str(db), str(folder)]


def byte_compile_schemalog(log: Path) -> str | None:
    """Byte-compile the package, as installing a wheel does (and as the peers' installs did):
    with PYTHONDONTWRITEBYTECODE set, the editable install would otherwise compile every
    module from source in every timed run. A note on failure."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    packages = [str(PROJECT / name) for name in ("schemalog", "engine", "journal")]
    python = str(PROJECT / ".venv" / "bin" / "python")
    if not _run([python, "-m", "compileall", "-q", *packages], log, env=env):
        return f"byte-compiling schemalog failed (see {log})"
    return None


class Schemalog(Tool):
    """schemalog's CLI, as the contract in DESIGN.md describes it.

    Plain migrations are written as `NNN_name.sql` with a `-- migrate:up` section; table
    rebuilds as `NNN_name.py` with `foreign_keys = False` (the SQL format has no way to
    say so). With `fmt="py"` every migration is a `.py` file.
    """

    def __init__(self, fmt: str = "sql") -> None:
        super().__init__(
            "schemalog", (".journal.jsonl", ".lock", ".backups"), sets_user_version=True
        )
        self.fmt = fmt

    def setup(self, envs: Path, log: Path) -> str | None:
        if not SCHEMALOG.exists():
            return f"{SCHEMALOG} does not exist (run `make venv`)"
        note = byte_compile_schemalog(log)
        if note:
            return note
        try:
            r = subprocess.run(
                [str(SCHEMALOG), "--help"], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`schemalog --help` could not run: {exc}"
        if r.returncode != 0:
            last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"`schemalog --help` exited {r.returncode}: {last[0][:160]}"
        return None

    def version(self) -> str:
        return _pip_versions(PROJECT / ".venv" / "bin" / "python", ["schemalog"])

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        w = _width(migrations, 3)
        for m in migrations:
            stem = f"{m.version:0{w}d}_{m.name}"
            if m.foreign_keys_off or self.fmt == "py":
                _check_sql(m)
                desc = m.description or m.name
                text = f'"""{desc}\n\nImpact: generated benchmark migration.\n"""\n'
                if m.foreign_keys_off:
                    text += "foreign_keys = False\n"
                text += f'up = """\n{m.sql}"""\n'
                if m.down:
                    text += f'down = """\n{m.down_sql}"""\n'
                (folder / f"{stem}.py").write_text(text)
            else:
                down = f"\n-- migrate:down\n{m.down_sql}" if m.down else ""
                (folder / f"{stem}.sql").write_text(f"-- migrate:up\n{m.sql}{down}")

    def prepare_db(self, folder: Path, db: Path, log: Path) -> str | None:
        """Adopt the payload database: `schemalog baseline 0` (untimed).

        schemalog refuses to migrate a database that has a schema (the `payload` table)
        but no journal, as it should; an application adopting schemalog does this once.
        """
        argv = [*self.base(folder, db), "baseline", "0"]
        if not _run(argv, log):
            return f"`schemalog baseline 0` failed (see {log})"
        return None

    def base(self, folder: Path | None, db: Path) -> list[str]:
        """`schemalog --database DB [--migrations DIR]`: the global options every call uses."""
        argv = [str(SCHEMALOG), "--database", str(db)]
        return [*argv, "--migrations", str(folder)] if folder is not None else argv

    def command(self, folder: Path, db: Path) -> list[str]:
        return [*self.base(folder, db), "up"]


class Yoyo(Tool):
    """yoyo-migrations, SQL files with `-- depends:` on the previous one (as `yoyo new`)."""

    packages = ("yoyo-migrations",)

    def __init__(self) -> None:
        super().__init__("yoyo")
        self.env: Path | None = None

    def setup(self, envs: Path, log: Path) -> str | None:
        self.env = envs / "yoyo"
        return _venv(envs, "yoyo", list(self.packages), log)

    def version(self) -> str:
        return _pip_versions(self.env / "bin" / "python", ["yoyo-migrations", "sqlparse"])

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        prev = None
        for m in migrations:
            mid = f"{m.version:04d}_{m.name}"
            head = f"-- {m.description or m.name}\n"
            if prev:
                head += f"-- depends: {prev}\n"
            (folder / f"{mid}.sql").write_text(head + "\n" + m.sql)
            prev = mid

    def command(self, folder: Path, db: Path) -> list[str]:
        return [
            str(self.env / "bin" / "yoyo"),
            "apply",
            "--batch",
            "--no-config-file",
            "--database",
            f"sqlite:///{db}",
            str(folder),
        ]


class Alembic(Tool):
    """alembic with `alembic init`'s generic env.py; one `op.execute` per statement."""

    packages = ("alembic", "sqlalchemy")

    def __init__(self) -> None:
        super().__init__("alembic")
        self.env: Path | None = None

    def setup(self, envs: Path, log: Path) -> str | None:
        self.env = envs / "alembic"
        return _venv(envs, "alembic", list(self.packages), log)

    def version(self) -> str:
        return _pip_versions(self.env / "bin" / "python", ["alembic", "sqlalchemy"])

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        from generate import split_statements

        subprocess.run(
            [str(self.env / "bin" / "alembic"), "init", "alembic"],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        ini = folder / "alembic.ini"
        lines = ini.read_text().splitlines()
        lines = [
            f"sqlalchemy.url = sqlite:///{db}" if ln.startswith("sqlalchemy.url") else ln
            for ln in lines
        ]
        ini.write_text("\n".join(lines) + "\n")
        versions = folder / "alembic" / "versions"
        prev = None
        for m in migrations:
            _check_sql(m)
            rev = f"{m.version:04d}"
            body = "\n".join(
                f'    op.execute(\n        """{stmt}"""\n    )' for stmt in split_statements(m.sql)
            )
            text = (
                f'"""{m.description or m.name}\n\nRevision ID: {rev}\nRevises: {prev or ""}\n'
                f'Create Date: 2024-06-01 00:00:00\n\n"""\n'
                "from alembic import op\n\n"
                f"revision = {rev!r}\ndown_revision = {prev!r}\n"
                "branch_labels = None\ndepends_on = None\n\n\n"
                f"def upgrade() -> None:\n{body}\n\n\n"
                "def downgrade() -> None:\n    pass\n"
            )
            (versions / f"{rev}_{m.name}.py").write_text(text)
            prev = rev

    def command(self, folder: Path, db: Path) -> list[str]:
        return [
            str(self.env / "bin" / "alembic"),
            "-c",
            str(folder / "alembic.ini"),
            "upgrade",
            "head",
        ]


class Dbmate(Tool):
    """dbmate from the npm package; the native binary it ships is run directly."""

    def __init__(self) -> None:
        super().__init__("dbmate")
        self.prefix: Path | None = None

    def binary(self) -> Path:
        native = self.prefix / "node_modules" / "@dbmate" / "linux-x64" / "bin" / "dbmate"
        if native.exists():
            return native
        return self.prefix / "node_modules" / ".bin" / "dbmate"

    def setup(self, envs: Path, log: Path) -> str | None:
        self.prefix = envs / "dbmate"
        if self.binary().exists():
            return None
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed"
        if not _run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(self.prefix), "dbmate"], log
        ):
            return f"npm install dbmate failed (see {log})"
        if not self.binary().exists():
            return f"npm installed dbmate but no binary at {self.binary()}"
        return None

    def version(self) -> str:
        try:
            out = subprocess.run(
                [str(self.binary()), "--version"], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return "unknown"
        return out.stdout.strip()

    def write(self, migrations: list[Migration], folder: Path, db: Path) -> None:
        w = _width(migrations, 3)
        for m in migrations:
            text = f"-- migrate:up\n{m.sql}\n-- migrate:down\n"
            (folder / f"{m.version:0{w}d}_{m.name}.sql").write_text(text)

    def command(self, folder: Path, db: Path) -> list[str]:
        return [
            str(self.binary()),
            "--url",
            f"sqlite:{db}",
            "--migrations-dir",
            str(folder),
            "--no-dump-schema",
            "up",
        ]


def all_tools(schemalog_format: str = "sql") -> list[Tool]:
    """Every tool, the floor first."""
    return [Floor(), Schemalog(schemalog_format), Yoyo(), Alembic(), Dbmate()]


#: tables and indexes that belong to a tool, not to the application schema
TOOL_TABLES = (
    "alembic_version",
    "schema_migrations",
    "_yoyo_migration",
    "_yoyo_log",
    "_yoyo_version",
    "yoyo_lock",
)
TOOL_PREFIXES = ("schemalog_", "_yoyo", "sqlite_")


def is_tool_table(name: str) -> bool:
    """True for a table a migration tool (or SQLite) keeps for itself."""
    return name in TOOL_TABLES or name.startswith(TOOL_PREFIXES)


def env_for_runs() -> dict[str, str]:
    """The environment every timed command runs with: ours, minus the venv's markers."""
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DATABASE_URL"):
        env.pop(var, None)
    for var in list(env):
        if var.startswith(("SCHEMALOG_", "DBMATE_")):
            env.pop(var)
    return env

"""The victim of the crash tests: one Migrator command in a process of its own.

    python tests/engine/crash_driver.py DB MIGRATIONS upgrade [--to V]
    python tests/engine/crash_driver.py DB MIGRATIONS downgrade --to V
    python tests/engine/crash_driver.py DB MIGRATIONS backup create
    python tests/engine/crash_driver.py DB MIGRATIONS backup restore ID
    python tests/engine/crash_driver.py DB MIGRATIONS recover

Options before the command: `--transaction run|step`, `--integrity quick|full|off`.
Backups go to the default `<DB>.backups/`. With `SCHEMALOG_FAILPOINT` set, the process
dies by SIGKILL at that failpoint (see journal/failpoints.py); otherwise it exits 0, or
the error's exit code with its message on stderr. It prints one line, `ready`, once its
imports are done and just before the command starts (the random-kill test times its kill
from that line); nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script, from anywhere

from schemalog.engine.base.errors import SchemalogError
from schemalog.engine.base.settings import Settings
from schemalog.engine.migrator import Migrator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crash_driver")
    parser.add_argument("database", type=Path)
    parser.add_argument("migrations", type=Path)
    parser.add_argument("--transaction", choices=("run", "step"), default="run")
    parser.add_argument("--integrity", choices=("quick", "full", "off"), default="quick")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade")
    up.add_argument("--to", type=int, default=None)
    down = commands.add_parser("downgrade")
    down.add_argument("--to", type=int, required=True)
    backup = commands.add_parser("backup")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True)
    backup_commands.add_parser("create")
    restore = backup_commands.add_parser("restore")
    restore.add_argument("backup_id")
    commands.add_parser("recover")
    return parser


def main(argv: list[str]) -> int:
    """Run the command; return its exit code."""
    args = _parser().parse_args(argv)
    migrator = Migrator(
        Settings(
            database=args.database,
            migrations=args.migrations,
            lock_timeout=10.0,
            transaction=args.transaction,
            integrity=args.integrity,
        )
    )
    print("ready", flush=True)
    try:
        if args.command == "upgrade":
            migrator.upgrade(args.to)
        elif args.command == "downgrade":
            migrator.downgrade(args.to)
        elif args.command == "recover":
            migrator.recover()
        elif args.backup_command == "create":
            migrator.backup_create()
        else:
            migrator.backup_restore(args.backup_id)
    except SchemalogError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The size of the backup directory after many runs (issue 13: backups of a manageable size).

A payload database of about 78 MB (`generate.database`; 8 MB with `--quick`) is adopted
(`baseline 0`) and then run `runs` times (12 by default: more than the default count of
10 backups kept): each run is `up` (the first 3 Grocy-like migrations) or `down --to 0`,
alternately, and each takes a backup of the whole database. After a third and after two
thirds of the runs, `backup restore` of the newest backup (which preserves the replaced
database in a `pre-restore-*` directory next to the backups). After every run the total
size of every file under the backup directory — backups and `pre-restore-*` directories —
is recorded.

Two configurations, each from a fresh copy: the defaults, and `retention_bytes` set to
`budget_factor` (4) times the database size. Reported: the final and the largest total,
against the budget. Standalone: `python bench/backup_budget.py [--quick] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import database, parse_size
from measure import progress, reset_database, sync_tree
from tools import BENCH, Schemalog, env_for_runs

SIZE = "78MB"
QUICK_SIZE = "8MB"
MIGRATIONS = 3


def tree_bytes(folder: Path) -> dict:
    """Total size of the files under `folder`, and how many backups / pre-restore dirs."""
    total = files = 0
    pre = 0
    if folder.exists():
        for p in folder.rglob("*"):
            if p.is_file():
                total += p.stat().st_size
                files += 1
            elif p.is_dir() and p.name.startswith("pre-restore-"):
                pre += 1
    backups = len(list(folder.glob("*.sqlite*"))) if folder.exists() else 0
    return {"bytes": total, "files": files, "backups": backups, "pre_restore_dirs": pre}


def _cli(base: list[str], args: list[str], cwd: Path, env: dict) -> str:
    r = subprocess.run(
        [*base, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    if r.returncode != 0:
        msg = f"`schemalog {' '.join(args)}` exited {r.returncode}: {r.stderr.strip()[-300:]}"
        raise RuntimeError(msg)
    return r.stdout


def one_config(
    name: str,
    src: Path,
    migrations: Path,
    folder: Path,
    runs: int,
    retention_bytes: int | None,
    log: Callable[[str], None],
) -> dict:
    """Run the sequence (module docstring) on a fresh copy of `src`; sizes after each run."""
    tool = Schemalog()
    db = folder / "app.db"
    reset_database(src, db, tool.sidecars)
    note = tool.prepare_db(migrations, db, folder / "prepare.log")
    if note:
        raise RuntimeError(note)
    sync_tree(db, tool.sidecars)
    env = env_for_runs()
    if retention_bytes is not None:
        env["SCHEMALOG_RETENTION_BYTES"] = str(retention_bytes)
    base = tool.base(migrations, db)
    backups = Path(f"{db}.backups")
    restore_after = {max(1, runs // 3), max(2, 2 * runs // 3)}
    version = 0
    trace = []
    t0 = time.perf_counter()
    for i in range(1, runs + 1):
        if version == 0:
            _cli(base, ["up"], folder, env)
            version = MIGRATIONS
        else:
            _cli(base, ["down", "--to", "0"], folder, env)
            version = 0
        step = {"run": i, "command": "up" if version else "down"}
        if i in restore_after:
            listed = json.loads(_cli(base, ["backup", "list", "--json"], folder, env))
            newest = listed[-1]
            _cli(base, ["backup", "restore", newest["id"]], folder, env)
            version = newest["version"]
            step["restored"] = newest["id"]
        step.update(tree_bytes(backups))
        trace.append(step)
    seconds = time.perf_counter() - t0
    final = trace[-1]
    largest = max(s["bytes"] for s in trace)
    log(
        f"backup budget ({name}): {final['bytes'] / 1e6:.0f} MB after {runs} runs "
        f"(largest {largest / 1e6:.0f} MB), {final['backups']} backups, "
        f"{final['pre_restore_dirs']} pre-restore dirs"
    )
    return {
        "config": name,
        "retention_bytes": retention_bytes,
        "final_bytes": final["bytes"],
        "largest_bytes": largest,
        "backups": final["backups"],
        "pre_restore_dirs": final["pre_restore_dirs"],
        "within_budget": None if retention_bytes is None else largest <= retention_bytes,
        "seconds": seconds,
        "trace": trace,
    }


def run(
    work: Path, *, size: int, runs: int, budget_factor: float, log: Callable[[str], None]
) -> dict:
    """Both configurations on one cached database of about `size` bytes."""
    from growth import write_grocy_folder

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = database(size, BENCH / "work" / "dbs")
    migrations = write_grocy_folder(work / "migrations", MIGRATIONS, BENCH / "work" / "sets")
    db_bytes = src.stat().st_size
    budget = int(budget_factor * db_bytes)
    configs = []
    for name, limit in (("defaults", None), (f"retention_bytes={budget}", budget)):
        folder = work / ("defaults" if limit is None else "budget")
        folder.mkdir()
        configs.append(one_config(name, src, migrations, folder, runs, limit, log))
        shutil.rmtree(folder, ignore_errors=True)  # up to ~1 GB at 78 MB
        os.sync()
    return {"db_bytes": db_bytes, "runs": runs, "budget_bytes": budget, "configs": configs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="an 8 MB database")
    p.add_argument("--size", help="database size (default 78MB)")
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--budget-factor", type=float, default=4.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    size = parse_size(args.size or (QUICK_SIZE if args.quick else SIZE))

    result = run(
        BENCH / "work" / "budget",
        size=size,
        runs=args.runs,
        budget_factor=args.budget_factor,
        log=progress,
    )
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        from costs import render_budget

        print("\n".join(render_budget(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

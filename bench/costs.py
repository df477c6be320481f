"""Issue 13's measurements in one document: costs that must not grow, fixed costs, backups.

`make bench` runs these after the migration matrix (`run.py`; `--no-costs` to skip,
`--costs-only` to run only these; `--quick` runs them at the quick scale when `--costs` is
given). Standalone: `python bench/costs.py [--quick] [--only growth,check,budget]`, which
writes `bench/work/costs-<date>.{md,json}`.

| part | module | what |
|---|---|---|
| growth | `growth.py` | `status --json` and a no-op `up` (cold, whole process) at 406 / 5k / 20k / 100k events; the warm in-process no-op `upgrade()` in ms; cold `status` against `python -c "import sqlite3"` |
| check | `check_cost.py` | `check --all` on 62, 124 and 248 Grocy-like migrations |
| budget | `backup_budget.py` | the backup directory after 12 runs on a 78 MB database, defaults and `retention_bytes` |
| cells | `run.py`'s matrix | 50 migrations on 10 MB and on 1 GB against the floor, with the peers |

Each part that fails becomes `{"skipped": why}` in the document, never a lost run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import progress
from tools import BENCH, PROJECT

PARTS = ("growth", "check", "budget")

#: issue 13's targets
STATUS_GROWTH = 1.3
WARM_UPGRADE_MS = 10.0
STATUS_OVER_IMPORT_S = 0.1
CHECK_RATIO = 2.6
CELL_RATIO = 1.5
CELLS = ((50, "10MB"), (50, "1GB"))


def commit_id() -> str:
    """`git rev-parse HEAD` of the project, plus " (dirty)" when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (dirty)" if dirty else "")


@dataclass(frozen=True)
class Plan:
    """What to run, at which scale."""

    quick: bool = False
    parts: tuple[str, ...] = PARTS
    runs: int = 5  # rounds of the cold commands
    calls: int = 50  # warm upgrade() calls
    budget_s: float = 30.0  # seconds of warm calls per journal length
    history: str = "clone"
    check_runs: int = 3  # a linear check takes about 3 min a round at 62+124+248 here
    budget_runs: int = 12

    @classmethod
    def of(cls, *, quick: bool, parts: tuple[str, ...] = PARTS, runs: int | None = None) -> Plan:
        return cls(
            quick=quick,
            parts=parts,
            runs=runs or (3 if quick else 5),
            check_runs=1 if quick else 3,
        )


def run_costs(work: Path, plan: Plan, log: Callable[[str], None]) -> dict:
    """Every part of `plan`; each failure is recorded as skipped."""
    import backup_budget
    import check_cost
    import growth
    from generate import parse_size

    doc: dict = {"scale": "quick" if plan.quick else "full", "commit": commit_id()}
    jobs = {
        "growth": lambda: growth.run(
            work / "growth",
            quick=plan.quick,
            runs=plan.runs,
            calls=plan.calls,
            budget=plan.budget_s,
            mode=plan.history,
            log=log,
        ),
        "check": lambda: check_cost.run(
            work / "check",
            check_cost.QUICK_COUNTS if plan.quick else check_cost.COUNTS,
            plan.check_runs,
            log,
        ),
        "budget": lambda: backup_budget.run(
            work / "budget",
            size=parse_size(backup_budget.QUICK_SIZE if plan.quick else backup_budget.SIZE),
            runs=plan.budget_runs,
            budget_factor=4.0,
            log=log,
        ),
    }
    for part in plan.parts:
        log(f"costs: {part}")
        t0 = time.perf_counter()
        try:
            doc[part] = jobs[part]()
        except Exception as exc:  # one broken part must not lose the others
            log(f"costs: {part} skipped: {type(exc).__name__}: {exc}")
            doc[part] = {
                "skipped": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
        doc[part]["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return doc


def fixed_cells(scenarios: list[dict]) -> list[dict]:
    """The 50-migration cells at 10 MB and 1 GB of a `run.py` matrix, as ratios to the floor."""
    out = []
    for count, size in CELLS:
        sc = next((s for s in scenarios if s["count"] == count and s["size"] == size), None)
        if sc is None:
            out.append({"count": count, "size": size, "skipped": "not in this run's matrix"})
            continue
        tools = sc["tools"]
        floor = tools.get("floor", {})
        row = {"count": count, "size": size, "floor_s": floor.get("median"), "tools": {}}
        for name, r in tools.items():
            if name != "floor":
                row["tools"][name] = {
                    "median_s": r.get("median"),
                    "ratio": r.get("ratio"),
                    "paired_ratio": r.get("paired_ratio"),
                }
        out.append(row)
    return out


# --------------------------------------------------------------------------------------
# Report


def _f(x: float | None, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def targets(doc: dict) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) for each of issue 13's targets that this run measured.

    Where a ratio is given in wall and in CPU time, it is met only when both are.
    """
    rows: list[tuple[str, str, str, bool | None]] = []
    g = doc.get("growth", {})
    if "cold" in g:
        s = g["cold"]["summary"]
        lo, hi = s["smallest"], s["largest"]
        for key, what in (("status", "`status --json`"), ("up", "no-op `up`")):
            ratio = s[f"{key}_ratio"]
            rows.append(
                (
                    f"{what} at {hi:,} / at {lo:,} events (CPU time)",
                    f"{ratio:.2f}x ({s[f'{key}_cpu_ratio']:.2f}x)",
                    f"≤ {STATUS_GROWTH}x",
                    max(ratio, s[f"{key}_cpu_ratio"]) <= STATUS_GROWTH,
                )
            )
        over = s["status_minus_import_s"]
        rows.append(
            (
                f"cold `status` minus `python -c 'import sqlite3'` ({lo} events)",
                f"{over:+.3f} s",
                f"≤ {STATUS_OVER_IMPORT_S} s",
                over <= STATUS_OVER_IMPORT_S,
            )
        )
    warm = g.get("warm", {})
    for target in sorted(warm, key=int):
        w = warm[target]
        if "upgrade_ms" in w:
            ms = w["upgrade_ms"]["median"]
            rows.append(
                (
                    f"warm no-op `upgrade()`, {g.get('files', 200)} files, {int(target):,} events",
                    f"{ms:.1f} ms",
                    f"≤ {WARM_UPGRADE_MS:.0f} ms",
                    ms <= WARM_UPGRADE_MS,
                )
            )
    c = doc.get("check", {})
    if "ratio" in c:
        r = c["ratio"]
        rows.append(
            (
                f"`check --all`: t({r['larger']}) / t({r['smaller']}) (CPU time)",
                f"{r['value']:.2f} ({r['cpu']:.2f})",
                f"≤ {CHECK_RATIO} (linear: {r['linear']:.1f})",
                max(r["value"], r["cpu"]) <= CHECK_RATIO,
            )
        )
    for cell in doc.get("cells", []):
        sl = cell.get("tools", {}).get("schemalog")
        if not sl or sl.get("ratio") is None:
            continue
        paired = sl.get("paired_ratio") or sl["ratio"]
        rows.append(
            (
                f"{cell['count']} migrations on {cell['size']}: schemalog / floor (paired)",
                f"{sl['ratio']:.2f}x ({_f(sl.get('paired_ratio'), '.2f')}x)",
                f"≤ {CELL_RATIO}x",
                paired <= CELL_RATIO,
            )
        )
    b = doc.get("budget", {})
    for cfg in b.get("configs", []):
        if cfg["retention_bytes"] is not None:
            rows.append(
                (
                    f"backup dir after {b['runs']} runs, {b['db_bytes'] / 1e6:.0f} MB database, "
                    f"largest",
                    f"{cfg['largest_bytes'] / 1e6:.0f} MB",
                    f"≤ {cfg['retention_bytes'] / 1e6:.0f} MB (retention_bytes)",
                    cfg["within_budget"],
                )
            )
    return rows


def render_growth(g: dict) -> list[str]:
    out = ["### Journal growth: cold commands (whole process, medians)", ""]
    if "skipped" in g:
        return [*out, f"skipped: {g['skipped']}", ""]
    points = sorted(g["points"], key=int)
    cmds = g["cold"]["commands"]
    out += [
        "| events | build (s) | `status --json` (s) | no-op `up` (s) | warm `upgrade()` (ms) "
        "| first `upgrade()` in-process (s) | `PRAGMA user_version` (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in points:
        p = g["points"][t]
        w = g["warm"].get(t, g["warm"].get(str(t), {}))
        st = cmds.get(f"status --json @{t}", {})
        up = cmds.get(f"up (no-op) @{t}", {})
        if "upgrade_ms" in w:
            um = w["upgrade_ms"]
            warm = f"{um['median']:.1f} (n={um['n']}, {um['min']:.1f}-{um['max']:.1f})"
            first = f"{w['first_call_s']:.3f}"
            uv = f"{w['user_version_ms']['median']:.2f}"
        else:
            warm, first, uv = w.get("skipped", "—"), "—", "—"
        out.append(
            f"| {p['events']:,} | {p['build_s']} | {_f(st.get('median'))} | "
            f"{_f(up.get('median'))} | {warm} | {first} | {uv} |"
        )
    s = g["cold"]["summary"]
    ref = s["import_sqlite3_s"]
    plain = cmds.get(f"status @{s['smallest']}", {}).get("median")
    out += [
        "",
        f"`python -c 'import sqlite3'`: {ref:.3f} s; plain `status` at {s['smallest']} events: "
        f"{_f(plain)} s ({s['status_minus_import_s']:+.3f} s). Ratios {s['largest']:,} / "
        f"{s['smallest']:,} events: `status --json` {s['status_ratio']:.2f}x (CPU "
        f"{s['status_cpu_ratio']:.2f}x), no-op `up` {s['up_ratio']:.2f}x (CPU "
        f"{s['up_cpu_ratio']:.2f}x). {g['files']} migration files (Grocy-like set); one up/down "
        f"cycle of the last migration writes "
        f"{max(p['cycle_events'] for p in g['points'].values())} events; journals beyond the "
        "first `up` built by cloning that cycle through the journal API (`history.py`).",
        "",
    ]
    return out


def render_check(c: dict) -> list[str]:
    out = ["### `check --all` on the Grocy-like set (whole process)", ""]
    if "skipped" in c:
        return [*out, f"skipped: {c['skipped']}", ""]
    out += [
        "| migrations | median (s) | per migration (s) | CPU (s) | runs |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in sorted(c["counts"], key=int):
        r = c["counts"][n]
        out.append(
            f"| {n} | {r['median']:.2f} | {r['per_migration_s']:.3f} | {r['cpu_s']:.2f} | "
            f"{r['n']} |"
        )
    if "ratio" in c:
        r = c["ratio"]
        out += [
            "",
            f"t({r['larger']}) / t({r['smaller']}) = {r['value']:.2f}, in CPU time "
            f"{r['cpu']:.2f} (linear {r['linear']:.1f}; quadratic {r['linear'] ** 2:.1f}).",
        ]
    return [*out, ""]


def render_budget(b: dict) -> list[str]:
    out = ["### Backup directory under retention", ""]
    if "skipped" in b:
        return [*out, f"skipped: {b['skipped']}", ""]
    out += [
        "| configuration | final (MB) | largest (MB) | budget (MB) | backups | pre-restore dirs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cfg in b["configs"]:
        budget = "—" if cfg["retention_bytes"] is None else f"{cfg['retention_bytes'] / 1e6:.0f}"
        out.append(
            f"| {cfg['config']} | {cfg['final_bytes'] / 1e6:.0f} | "
            f"{cfg['largest_bytes'] / 1e6:.0f} | {budget} | {cfg['backups']} | "
            f"{cfg['pre_restore_dirs']} |"
        )
    out += [
        "",
        f"{b['runs']} runs (alternately `up` and `down --to 0`) of a {b['db_bytes'] / 1e6:.0f} MB "
        "database, with `backup restore` of the newest backup after a third and two thirds "
        "of them; sizes are every file under the backup directory, `pre-restore-*` included.",
        "",
    ]
    return out


def render_cells(cells: list[dict]) -> list[str]:
    out = ["### Fixed costs and big databases (from the matrix above)", ""]
    names = sorted({n for c in cells for n in c.get("tools", {})})
    if not names:
        return [*out, "not measured in this run", ""]
    out += [
        "| cell | floor (s) | " + " | ".join(f"{n} ratio (paired)" for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for c in cells:
        if "skipped" in c:
            blanks = [c["skipped"]] + [""] * (len(names) - 1)
            out.append(f"| {c['count']} / {c['size']} | — | " + " | ".join(blanks) + " |")
            continue
        cols = []
        for n in names:
            r = c["tools"].get(n, {})
            cols.append(f"{_f(r.get('ratio'), '.2f')}x ({_f(r.get('paired_ratio'), '.2f')}x)")
        out.append(
            f"| {c['count']} / {c['size']} | {_f(c['floor_s'])} | " + " | ".join(cols) + " |"
        )
    return [*out, ""]


def render_markdown(doc: dict) -> list[str]:
    """The issue-13 section of the report: the targets first, then each part."""
    scale = doc.get("scale", "full")
    out = [
        "## Issue 13: costs that must not grow",
        "",
        f"schemalog at {doc.get('commit', 'unknown')}; scale: {scale}"
        + (" (smoke run: NOT the issue's sizes)" if scale == "quick" else "")
        + ".",
        "",
        "| target | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    out += [f"| {a} | {b} | {c} | {_met(d)} |" for a, b, c, d in targets(doc)]
    out.append("")
    if "growth" in doc:
        out += render_growth(doc["growth"])
    if "check" in doc:
        out += render_check(doc["check"])
    if "cells" in doc:
        out += render_cells(doc["cells"])
    if "budget" in doc:
        out += render_budget(doc["budget"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke scale: small journals and sets")
    p.add_argument("--only", help=f"comma-separated parts: {','.join(PARTS)}")
    p.add_argument("--runs", type=int, help="rounds of the cold commands")
    p.add_argument("--history", choices=("clone", "migrator"), default="clone")
    args = p.parse_args(argv)
    parts = tuple(args.only.split(",")) if args.only else PARTS
    unknown = set(parts) - set(PARTS)
    if unknown:
        sys.exit(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")

    plan = Plan.of(quick=args.quick, parts=parts, runs=args.runs)
    plan = Plan(**{**plan.__dict__, "history": args.history})
    work = BENCH / "work" / "costs"
    doc = run_costs(work, plan, progress)
    md = "\n".join(render_markdown(doc))
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out = BENCH / "work" / f"costs-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str))
    out.with_suffix(".md").write_text(md)
    print(md)
    progress(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

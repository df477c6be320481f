"""Benchmark harness: apply generated migration sets with each tool, compare with the floor.

    .venv/bin/python bench/run.py            # default: 50, 200 migrations; 10MB, 100MB; 5 runs
    .venv/bin/python bench/run.py --quick    # same matrix, 3 runs, no extras (a few minutes)
    .venv/bin/python bench/run.py --full     # adds 1000 migrations and the 1GB database
    .venv/bin/python bench/run.py --only floor,dbmate --counts 200 --sizes 100MB --runs 7
    .venv/bin/python bench/run.py --costs-only --quick   # issue 13's measurements, smoke scale

For every (database size, migration count) scenario, every tool applies the whole set to
a fresh copy of the cached database (the copy is not timed), as a separate process timed
from start to exit. Each repetition runs every tool once, in a shuffled order, so that
the machine's noise spreads over all of them; each tool's median is reported with its
ratio to the floor's median measured in the same scenario of the same run. An untimed
warm-up round first checks that every tool produced the floor's schema and row counts.

After the matrix and the extras come issue 13's measurements (`costs.py`: journal growth,
the warm no-op `upgrade()`, `check` on 62/124/248 migrations, backups under retention) and
the 50-migration cells at 10 MB and 1 GB (`--cells`, default 50x1GB) read as ratios to the
floor, all in the same document, with the commit id.

Writes a Markdown report to stdout and to bench/work/results-<date>.md, and the raw
numbers to bench/work/results-<date>.json. Standard library only; the peers live in
their own environments under bench/.envs/, created on first use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import costs
import extras
from generate import DEFAULT_SEED, database, migration_set, parse_size, size_label
from measure import (
    compare,
    fingerprint,
    progress,
    read_rss,
    read_strace_counts,
    reset_database,
    rss_prefix,
    strace_prefix,
    summarize,
    sync_tree,
    timed_run,
)
from tools import BENCH, PROJECT, Tool, all_tools, byte_compile_schemalog, env_for_runs

WORK = BENCH / "work"
ENVS = BENCH / ".envs"


log = progress  # progress goes to stderr; the report goes to stdout


# --------------------------------------------------------------------------------------
# Machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    best, fs = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, typ, *_ = line.split()
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, fs = mnt, f"{typ} on {mnt} ({dev})"
    except OSError:
        pass
    return fs


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_head() -> str:
    try:
        r = subprocess.run(
            ["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        head = r.stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(PROJECT),
                "status",
                "--porcelain",
                "--",
                "schemalog",
                "engine",
                "journal",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pressure() -> dict[str, float]:
    """Share of the last 60 s some task waited for CPU / I/O (Linux PSI), in percent."""
    out = {}
    for res in ("cpu", "io"):
        try:
            line = Path(f"/proc/pressure/{res}").read_text().splitlines()[0]
            out[res] = float(line.split("avg60=")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return out


def machine_info() -> dict:
    """Facts about this machine that a reader needs to weigh the numbers."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "memory": _mem_total(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "filesystem": _filesystem(WORK.resolve()),
        "loadavg_start": os.getloadavg(),
        "pressure_start": pressure(),
        "git_head": _git_head(),
        "commit": costs.commit_id(),
    }


# --------------------------------------------------------------------------------------
# Arguments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 runs, no extras")
    mode.add_argument("--full", action="store_true", help="also 1000 migrations and 1GB")
    p.add_argument("--only", help="comma-separated tools: floor,schemalog,yoyo,alembic,dbmate")
    p.add_argument("--skip", default="", help="comma-separated tools to leave out")
    p.add_argument("--counts", help="comma-separated migration counts, e.g. 50,200")
    p.add_argument("--sizes", help="comma-separated database sizes, e.g. 10MB,100MB,1GB")
    p.add_argument("--runs", type=int, help="timed repetitions per scenario (median of these)")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (at least 1: the first checks results)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="migration generator seed")
    p.add_argument(
        "--extras",
        dest="extras",
        action="store_true",
        default=None,
        help="run the extra measurements (default: on unless --quick)",
    )
    p.add_argument("--no-extras", dest="extras", action="store_false")
    p.add_argument(
        "--schemalog-format",
        choices=("sql", "py"),
        default="sql",
        help="schemalog files: .sql (rebuilds as .py) or .py for all",
    )
    p.add_argument(
        "--no-syscalls",
        dest="syscalls",
        action="store_false",
        help="do not count sync system calls with strace in the warm-up round",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed")
    p.add_argument(
        "--prefault-mib",
        type=int,
        help="before each timed run, touch and free this much memory (default: twice the "
        "database; 0: none). A VM that hands freed memory back to its host makes the next "
        "big copy pay for it (docs/benchmarks.md)",
    )
    p.add_argument(
        "--cells",
        help="extra (count x size) scenarios beyond the matrix, e.g. 50x1GB "
        "(default: 50x1GB, none with --quick; '' for none)",
    )
    p.add_argument(
        "--costs",
        dest="costs",
        action="store_true",
        default=None,
        help="run issue 13's measurements (costs.py; default: on unless --quick, "
        "at the quick scale with --quick)",
    )
    p.add_argument("--no-costs", dest="costs", action="store_false")
    p.add_argument(
        "--costs-only",
        action="store_true",
        help="only issue 13's measurements: no tool matrix, no extras",
    )
    p.add_argument(
        "--costs-parts",
        default=",".join(costs.PARTS),
        help=f"which of them (default {','.join(costs.PARTS)})",
    )
    p.add_argument(
        "--history",
        choices=("clone", "migrator"),
        default="clone",
        help="how long journals are built (history.py)",
    )
    args = p.parse_args(argv)
    if args.full:
        counts, sizes, runs = "50,200,1000", "10MB,100MB,1GB", 5
    elif args.quick:
        counts, sizes, runs = "50,200", "10MB,100MB", 3
    else:
        counts, sizes, runs = "50,200", "10MB,100MB", 5
    args.counts = [int(c) for c in (args.counts or counts).split(",")]
    args.sizes = [parse_size(s) for s in (args.sizes or sizes).split(",")]
    args.runs = args.runs or runs
    if args.extras is None:
        args.extras = not args.quick
    if args.costs is None:
        args.costs = args.costs_only or not args.quick
    if args.cells is None:
        args.cells = "" if args.quick else "50x1GB"
    args.cells = [
        (int(c), parse_size(z))
        for c, z in (cell.lower().split("x", 1) for cell in args.cells.split(",") if cell)
    ]
    return args


# --------------------------------------------------------------------------------------
# The run


def select_tools(args: argparse.Namespace) -> tuple[list[Tool], dict[str, str]]:
    """The tools to run, installed; and a note for each one skipped."""
    tools = all_tools(args.schemalog_format)
    names = [t.name for t in tools]
    wanted = set(args.only.split(",")) if args.only else set(names)
    wanted -= set(filter(None, args.skip.split(",")))
    unknown = wanted - set(names)
    if unknown:
        sys.exit(f"unknown tool(s) {sorted(unknown)}; known: {', '.join(names)}")
    chosen, skipped = [], {}
    ENVS.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        if tool.name not in wanted:
            continue
        log(f"setting up {tool.name}")
        note = tool.setup(ENVS, WORK / f"setup-{tool.name}.log")
        if note:
            log(f"  skipped: {note}")
            skipped[tool.name] = note
        else:
            chosen.append(tool)
    return chosen, skipped


def run_scenario(
    args: argparse.Namespace,
    tools: list[Tool],
    folders: dict[tuple[str, int], Path],
    src: Path,
    count: int,
    rng: random.Random,
) -> dict:
    """Warm up and check, then time `args.runs` interleaved rounds of every tool."""
    env = env_for_runs()
    runs_dir = WORK / "runs"
    label = f"{count} migrations, {size_label(args.size_now)}"
    results: dict[str, dict] = {t.name: {"runs": []} for t in tools}
    notes: list[str] = []
    active = list(tools)
    reference: dict | None = None

    def one(tool: Tool, tag: str, prefix: list[str] | None = None) -> dict | None:
        db = runs_dir / tool.name / "app.db"
        reset_database(src, db, tool.sidecars)
        folder = folders[(tool.name, count)]
        prep_log = runs_dir / tool.name / f"{tag}.prepare.log"
        prep_log.unlink(missing_ok=True)
        note = tool.prepare_db(folder, db, prep_log)
        if note:
            notes.append(f"{tool.name} ({label}): {note}")
            results[tool.name]["failed"] = note
            log(f"  {tool.name}: {note}")
            return None
        sync_tree(db, tool.sidecars)
        prefault(2 * args.size_now >> 20 if args.prefault_mib is None else args.prefault_mib)
        r = timed_run(
            [*(prefix or []), *tool.command(folder, db)],
            folder,
            runs_dir / tool.name / f"{tag}.log",
            env,
            timeout=args.timeout,
        )
        if r.returncode != 0:
            logf = runs_dir / tool.name / f"{tag}.log"
            tail = logf.read_text(errors="replace").strip().splitlines()[-3:]
            note = f"{tool.name} failed ({label}, exit {r.returncode}): {' | '.join(tail)[:400]}"
            log(f"  {note}")
            notes.append(note)
            results[tool.name]["failed"] = note
            shutil.copy(
                logf, runs_dir / tool.name / f"failed-{count}-{size_label(args.size_now)}.log"
            )
            return None
        return {"result": r, "db": db}

    # Warm-up rounds: untimed. The first checks each tool's result against the floor's
    # and, under strace when it is there, counts the tool's sync system calls.
    rounds = max(args.warmup, 1)
    for w in range(rounds):
        for tool in list(active):
            report = runs_dir / tool.name / "strace.txt"
            rss_report = runs_dir / tool.name / "rss.txt"
            report.unlink(missing_ok=True)
            rss_report.unlink(missing_ok=True)
            prefix: list[str] = []
            if w == 0:
                prefix += rss_prefix(rss_report) or []
                prefix += (strace_prefix(report) if args.syscalls else None) or []
            out = one(tool, f"warmup-{w}", prefix)
            if out is None:
                active.remove(tool)
                continue
            if w == 0:
                results[tool.name]["peak_rss_mib"] = read_rss(rss_report)
                if report.exists():
                    results[tool.name]["sync_calls"] = read_strace_counts(report)
                    results[tool.name]["syncs"] = sum(results[tool.name]["sync_calls"].values())
                fp = fingerprint(out["db"])
                results[tool.name]["fingerprint"] = {
                    k: fp[k] for k in ("schema", "objects", "user_version")
                }
                if tool.sets_user_version and fp["user_version"] != count:
                    note = f"{tool.name} ({label}) left user_version {fp['user_version']}"
                    notes.append(note)
                    results[tool.name]["mismatch"] = note
                if tool.name == "floor":
                    reference = fp
                elif reference is not None:
                    diff = compare(reference, fp)
                    if diff:
                        notes.append(f"{tool.name} ({label}) differs from the floor: {diff}")
                        results[tool.name]["mismatch"] = diff
                        log(f"  {tool.name}: {diff}")

    for rep in range(args.runs):
        order = list(active)
        rng.shuffle(order)
        for tool in order:
            if tool not in active:
                continue
            out = one(tool, f"run-{rep}")
            if out is None:
                active.remove(tool)
                continue
            r = out["result"]
            results[tool.name]["runs"].append(r.as_dict())
        line = ", ".join(
            f"{t.name} {results[t.name]['runs'][-1]['wall']:.2f}s"
            for t in tools
            if results[t.name]["runs"] and t in active
        )
        log(f"  round {rep + 1}/{args.runs}: {line}")

    # Medians and ratios (to the floor's median, and the median of per-round ratios).
    floor_runs = [r["wall"] for r in results.get("floor", {}).get("runs", [])]
    floor_med = statistics.median(floor_runs) if floor_runs else None
    for res in results.values():
        walls = [r["wall"] for r in res["runs"]]
        res.update(summarize(walls))
        if walls:
            res["cpu_s"] = statistics.median(r["user"] + r["system"] for r in res["runs"])
        if walls and floor_med:
            res["ratio"] = res["median"] / floor_med
            if len(floor_runs) == len(walls):
                res["paired_ratio"] = statistics.median(
                    w / f for w, f in zip(walls, floor_runs, strict=True)
                )
    return {
        "count": count,
        "size": size_label(args.size_now),
        "db_bytes": src.stat().st_size,
        "loadavg": os.getloadavg(),
        "pressure": pressure(),
        "tools": results,
        "notes": notes,
    }


def write_folders(
    args: argparse.Namespace, tools: list[Tool]
) -> tuple[dict[tuple[str, int], Path], dict[int, dict]]:
    """Write every migration set in every tool's format (not timed)."""
    folders: dict[tuple[str, int], Path] = {}
    sets: dict[int, dict] = {}
    for count in sorted({*args.counts, *(c for c, _ in args.cells)}):
        t0 = time.perf_counter()
        ms = migration_set(count, args.seed, WORK / "sets")
        sets[count] = {
            "migrations": len(ms),
            "statements": sum(len(m.statements) for m in ms),
            "rebuilds": sum(m.foreign_keys_off for m in ms),
            "sql_bytes": sum(len(m.sql) for m in ms),
        }
        log(f"migration set {count}: {sets[count]} ({time.perf_counter() - t0:.1f}s)")
        for tool in tools:
            folder = WORK / "migrations" / f"{tool.name}-{count}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            tool.write(ms, folder, WORK / "runs" / tool.name / "app.db")
            folders[(tool.name, count)] = folder
    return folders, sets


def prefault(mib: int) -> None:
    """Touch `mib` MiB of fresh memory, then free it.

    On a VM with free page reporting (this one), memory freed a second or two ago has been
    handed back to the host, and the next copy of a large file spends seconds of system time
    faulting it back: a tool whose preparation took longer (schemalog's `baseline`) would pay
    that and the floor would not. Freed just before the run, the memory is still the guest's.
    """
    if mib <= 0:
        return
    buf = bytearray(mib << 20)
    buf[::4096] = b"\x01" * len(range(0, len(buf), 4096))
    del buf


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info = machine_info()
    report: dict = {"machine": info, "config": _config(args)}
    if not args.costs_only:
        report.update(run_matrix(args))
    if args.costs:
        note = byte_compile_schemalog(WORK / "setup-compile.log")
        if note:
            log(note)
        plan = costs.Plan.of(quick=args.quick, parts=tuple(args.costs_parts.split(",")))
        plan = costs.Plan(**{**plan.__dict__, "history": args.history})
        report["costs"] = costs.run_costs(WORK / "costs", plan, log)
        report["costs"]["cells"] = costs.fixed_cells(report.get("scenarios", []))
    info["loadavg_end"] = os.getloadavg()
    info["pressure_end"] = pressure()
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    json_path = WORK / f"results-{stamp}.json"
    json_path.write_text(json.dumps(report, indent=1, default=str))
    md = render_markdown(report)
    (WORK / f"results-{stamp}.md").write_text(md)
    print(md)
    log(f"wrote {json_path} and {json_path.with_suffix('.md')} in {info['elapsed_s']}s")
    return 0


def _config(args: argparse.Namespace) -> dict:
    return {
        "counts": args.counts,
        "sizes": [size_label(s) for s in args.sizes],
        "cells": [f"{c}x{size_label(z)}" for c, z in args.cells],
        "runs": args.runs,
        "warmup": args.warmup,
        "seed": args.seed,
        "schemalog_format": args.schemalog_format,
        "costs": args.costs and ("quick" if args.quick else "full"),
        "prefault": "twice the database's size"
        if args.prefault_mib is None
        else f"{args.prefault_mib} MiB",
    }


def run_matrix(args: argparse.Namespace) -> dict:
    """The tools on every scenario (the matrix, then the extra cells), then the extras."""
    tools, skipped = select_tools(args)
    if not tools:
        sys.exit("no tool to run")
    if "floor" not in {t.name for t in tools}:
        log("note: without the floor there are no ratios")
    versions = {t.name: t.version() for t in tools}
    folders, sets = write_folders(args, tools)
    commands = {
        t.name: " ".join(
            t.command(WORK / "migrations" / f"{t.name}-N", WORK / "runs" / t.name / "app.db")
        )
        for t in tools
    }
    rng = random.Random(args.seed)
    scenarios = []
    cells = [(z, c) for z in args.sizes for c in args.counts]
    cells += [(z, c) for c, z in args.cells if (z, c) not in cells]
    for size, count in cells:
        t0 = time.perf_counter()
        src = database(size, WORK / "dbs")
        log(
            f"database {size_label(size)}: {src.name}, {src.stat().st_size / 1e6:.0f} MB "
            f"({time.perf_counter() - t0:.1f}s)"
        )
        args.size_now = size
        log(f"scenario: {count} migrations, {size_label(size)}")
        scenarios.append(run_scenario(args, tools, folders, src, count, rng))

    extra_rows: list[dict] = []
    if args.extras:
        names = {t.name for t in tools}
        largest = max(args.counts)
        ctx = extras.Context(
            work=WORK / "extras",
            source_db=database(max(args.sizes), WORK / "dbs"),
            migrations=folders.get(("schemalog", largest)),
            floor_migrations=folders.get(("floor", largest)),
            runs=args.runs,
            schemalog_ok="schemalog" in names,
            log=log,
        )
        extra_rows = extras.run_all(ctx)
    return {
        "versions": versions,
        "skipped": skipped,
        "commands": commands,
        "sets": sets,
        "scenarios": scenarios,
        "extras": extra_rows,
    }


# --------------------------------------------------------------------------------------
# Report


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def render_markdown(report: dict) -> str:
    """The human-readable report: machine, commands, one table of medians and ratios."""
    m = report["machine"]
    c = report["config"]
    if "scenarios" not in report:  # --costs-only
        out = [
            f"# Benchmark (issue 13 measurements only) — {m['date']}",
            "",
            f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, "
            f"{m['filesystem']}; Python {m['python']}, SQLite {m['sqlite']}; load average "
            f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; "
            f"commit {m['commit']}.",
            "",
            *costs.render_markdown(report.get("costs", {})),
        ]
        return "\n".join(out)
    out = [
        f"# Migration benchmark — {m['date']}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, "
        f"{m['filesystem']}; Python {m['python']}, SQLite {m['sqlite']} (Python's); "
        f"load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; "
        f"schemalog at {m['git_head']}; commit {m['commit']}.",
        "",
        f"Each cell: median wall time of {c['runs']} runs (whole process, start to exit), "
        f"after {c['warmup']} untimed warm-up round(s); tools interleaved in a shuffled order "
        f"each round; ratio = tool median / floor median in the same scenario. Seed {c['seed']}. "
        f"Memory touched and freed before each timed run: {c.get('prefault', 'none')}.",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in report["versions"].items()),
        "",
        "Migration sets: "
        + "; ".join(
            f"{n}: {s['statements']} statements, {s['rebuilds']} table rebuilds"
            for n, s in report["sets"].items()
        ),
        "",
        "| migrations | database | tool | median (s) | min-max (s) | ratio to floor | "
        "paired ratio | CPU (s) | peak RSS (MiB) | syncs |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    noise = []
    for sc in report["scenarios"]:
        psi = sc.get("pressure", {})
        noise.append(
            f"{sc['count']}/{sc['size']}: load {sc['loadavg'][0]:.1f}, "
            f"PSI cpu {psi.get('cpu', float('nan')):.0f}%, io {psi.get('io', float('nan')):.0f}%"
        )
        for name, r in sc["tools"].items():
            if "median" not in r:
                cell = "failed" if "failed" in r else "—"
                out.append(f"| {sc['count']} | {sc['size']} | {name} | {cell} | | | | | | |")
                continue
            mark = " ⚠" if "mismatch" in r else ""
            out.append(
                f"| {sc['count']} | {sc['size']} | {name}{mark} | {r['median']:.3f} | "
                f"{r['min']:.3f}-{r['max']:.3f} | {_fmt(r.get('ratio'), '.2f')} | "
                f"{_fmt(r.get('paired_ratio'), '.2f')} | {r['cpu_s']:.2f} | "
                f"{_fmt(r.get('peak_rss_mib'), '.0f')} | {r.get('syncs', '—')} |"
            )
        notes.extend(sc["notes"])
    out += [
        "",
        "Noise at the end of each scenario (1-min load average; share of the last 60 s some "
        "task waited for CPU / I/O): " + "; ".join(noise) + ".",
    ]
    out += ["", "Commands (N = migration count; run with cwd = the migrations folder):", ""]
    out += [f"- {name}: `{cmd}`" for name, cmd in report["commands"].items()]
    if report["skipped"]:
        out += ["", "Skipped:", ""]
        out += [f"- {name}: {why}" for name, why in report["skipped"].items()]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if report["extras"]:
        out += ["", "## Extra measurements", "", "| measurement | value | note |", "|---|---:|---|"]
        for row in report["extras"]:
            if row.get("skipped"):
                out.append(f"| {row['name']} | skipped | {row['skipped']} |")
                continue
            note = ""
            if "ratio_to_cp" in row:
                note = f"{row['ratio_to_cp']:.2f}x the time of cp + fsync"
            elif "events_per_s" in row:
                note = f"{row['events_per_s']:,.0f} events/s"
            elif "seconds" in row:
                note = f"{row['seconds']:.3f} s"
            elif "via" in row:
                note = f"via {row['via']}"
            value = row["value"]
            fmt = ".0f" if row["unit"] in ("MiB/s", "MiB") else ".3f"
            out.append(f"| {row['name']} | {_fmt(value, fmt)} {row['unit']} | {note} |")
    out.append("")
    if "costs" in report:
        out += costs.render_markdown(report["costs"])
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

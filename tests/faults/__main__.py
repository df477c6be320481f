"""Reproduce one case of the fault campaign by hand, or summarise a results file.

    python -m tests.faults syscall OPERATION SYSCALL ERRNO N     e.g. up pwrite64 EIO 50
    python -m tests.faults disk FREE_BYTES                         e.g. 49152
    python -m tests.faults power OPERATION POINT CHOICE MODEL SEED e.g. up 22 lost posix 0
    python -m tests.faults summary RESULTS.jsonl

Each case builds the template worlds in a fresh temporary directory (kept with --keep),
runs the case exactly as the tests do and prints its verdict as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.faults import campaign
from tests.faults.results import summary
from tests.faults.world import build_template


def main(argv: list[str] | None = None) -> int:
    """Run the command line; exit 0 when the case passed, 1 when it broke an invariant."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory and the case's files"
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("syscall")
    p.add_argument("operation")
    p.add_argument("syscall")
    p.add_argument("errno")
    p.add_argument("n", type=int)
    p = sub.add_parser("disk")
    p.add_argument("free", type=int)
    p = sub.add_parser("power")
    p.add_argument("operation")
    p.add_argument("point", type=int)
    p.add_argument("choice")
    p.add_argument("model")
    p.add_argument("seed", type=int, nargs="?", default=0)
    p = sub.add_parser("summary")
    p.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.kind == "summary":
        print(summary(args.results))
        return 0
    work = Path(tempfile.mkdtemp(prefix="schemalog-fault-"))
    if args.keep:
        os.environ["SCHEMALOG_FAULTS_KEEP"] = "1"
    try:
        template = build_template(work / "template")
        if args.kind == "syscall":
            record = campaign.run_syscall_case(
                template, work, args.operation, args.syscall, args.errno, args.n
            )
        elif args.kind == "disk":
            record = campaign.run_disk_case(template, work, args.free)
        else:
            recordings = campaign.Recordings(template, work)
            record = campaign.run_power_case(
                recordings, work, args.operation, args.point, args.choice, args.model, args.seed
            )
        if record is None:
            print("no fault fired at that N", file=sys.stderr)
            return 0
        print(
            json.dumps(
                {"case": record.case, "detail": record.detail, **record.verdict.as_dict()}, indent=2
            )
        )
        return 1 if record.failed else 0
    finally:
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

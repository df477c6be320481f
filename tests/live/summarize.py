"""Print the records of a live run (`SCHEMALOG_LIVE_RESULTS=FILE`) as a Markdown table.

    python -m tests.live.summarize FILE [--details]

One row per scenario x journal mode: outcome, rows lost (of committed), exit codes, time of
the command under test, and the first problems found; `--details` adds every problem and
the stderr of each command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rows(path: Path) -> list[dict]:
    """The records of `path`, the last one of each test kept."""
    by_test: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            by_test[record["test"]] = record
    return list(by_test.values())


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    details = "--details" in argv
    print(
        "| scenario | mode | outcome | rows lost / committed | exit codes | time (s) | problems |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows(path):
        name = r["test"].split("::", 1)[1]
        end = r.get("end") or {}
        run = r.get("run") or {}
        codes = r.get("codes") or ({run["code"]: 1} if run else {})
        lost = f"{end.get('rows_lost', '-')} / {end.get('committed_rows', '-')}"
        problems = r.get("problems") or []
        print(
            f"| {_short(name, 90)} | {r.get('mode')} | {r.get('outcome')} | {lost} | "
            f"{codes} | {run.get('elapsed_s', r.get('window_s', '-'))} | "
            f"{_short('; '.join(problems), 260)} |"
        )
    if details:
        for r in rows(path):
            print(f"\n### {r['test']}\n")
            for problem in r.get("problems") or []:
                print(f"- {problem}")
            for c in r.get("commands") or []:
                print(f"    [{c['code']} in {c['elapsed_s']} s] {_short(c['args'], 80)}")
                if c["stderr"]:
                    print(f"        stderr: {_short(c['stderr'], 400)}")
            extra = {
                k: v
                for k, v in r.items()
                if k not in {"test", "commands", "problems", "end", "run", "failure"}
            }
            print(f"    extra: {json.dumps(extra, default=str)[:1500]}")
            print(f"    end: {json.dumps(r.get('end'), default=str)[:1500]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A JSONL damaged by power loss is mended from the journal table, through real
`python -m schemalog` processes: a zero-filled page in the middle, random bytes in the
unsynced tail, a garbage line. Each case ends with both journals equal, `user_version` equal to
the replayed version and every application row present; the damaged bytes are kept aside
(0600); read commands only report it; damage the table cannot vouch for is refused."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest

from schemalog.journal.chain import seal
from schemalog.journal.codec import encode
from schemalog.journal.events import Draft, Kind
from tests.engine.conftest import assert_journals_identical, of_kind, table_events, user_version
from tests.engine.procs import (
    DB,
    STEPS,
    digests,
    document,
    make_project,
    ok,
    rows_digest,
    schemalog,
    seed_rows,
)

JSONL = DB + ".journal.jsonl"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A project at the head, with 200 application rows: built once, copied by each test."""
    root = make_project(tmp_path_factory.mktemp("template"))
    ok(schemalog(root, "up", "--to", "1"))
    seed_rows(root / DB)
    ok(schemalog(root, "up"))
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template project."""
    root = tmp_path / "p"
    root.mkdir()
    for path in template.rglob("*"):
        target = root / path.relative_to(template)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
            target.chmod(stat.S_IMODE(path.stat().st_mode))
    return root


def damage(path: Path, start: int, size: int, *, junk: bytes | None = None) -> bytes:
    """Overwrite `size` bytes of `path` from `start` (zeros unless `junk`); returns the file."""
    raw = bytearray(path.read_bytes())
    raw[start : start + size] = junk if junk is not None else bytes(size)
    path.write_bytes(bytes(raw))
    return bytes(raw)


def assert_mended(root: Path, rows: str) -> tuple:
    """Both journals equal, version == user_version == head, every application row there."""
    events = assert_journals_identical(root / DB)
    assert user_version(root / DB) == STEPS
    assert rows_digest(root / DB) == rows
    status = document(ok(schemalog(root, "status", "--json")))
    assert status["version"] == STEPS and not status["needs_recovery"]
    assert status["journal"]["consistent"]
    return events


def repairs(root: Path) -> list[dict]:
    """Payloads of every `journal_repaired` event of the table."""
    return [e.data for e in of_kind(table_events(root / DB), "journal_repaired")]


class TestReadCommandsOnlyReport:
    def test_status_and_verify_report_a_zero_page_and_change_nothing(self, project: Path):
        """status: needs_recovery with the rewrite action; verify: exit 1 naming the lines;
        no file changes."""
        jsonl = project / JSONL
        assert jsonl.stat().st_size > 3 * 4096
        damage(jsonl, 4096, 4096)
        before = digests(project)
        status = document(ok(schemalog(project, "status", "--json")))
        assert status["needs_recovery"] and not status["journal"]["consistent"]
        assert status["version"] == STEPS
        assert any("rewrite the JSONL" in a for a in status["recovery_actions"])
        verify = ok(schemalog(project, "verify", "--json"), 1)
        checks = {c["check"]: c for c in document(verify)["checks"]}
        assert not checks["jsonl_damage"]["ok"]
        assert "recover" in checks["jsonl_damage"]["detail"]
        assert checks["journal_chain"]["ok"]
        for command in ("history", "replay", "events"):
            ok(schemalog(project, command, "--json"))
        dry = ok(schemalog(project, "recover", "--dry-run", "--json"))
        assert "rewrite_jsonl" in dry.stdout
        assert digests(project) == before


class TestPowerLossDamage:
    def test_zero_page_in_the_middle_is_rewritten_from_the_table(self, project: Path):
        """A zero-filled 4 KiB page inside the JSONL: `recover` rewrites it from the table."""
        rows = rows_digest(project / DB)
        jsonl = project / JSONL
        damaged = damage(jsonl, 4096, 4096)
        ok(schemalog(project, "recover"))
        assert_mended(project, rows)
        (repair,) = [d for d in repairs(project) if d["what"] == "damaged_lines"]
        assert repair["lines"] and repair["restored_seqs"]
        kept = Path(repair["saved_to"])
        assert kept.read_bytes() == damaged
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert stat.S_IMODE(jsonl.stat().st_mode) == 0o600
        assert not list(project.glob("*.replace-tmp"))

    def test_random_bytes_in_the_tail_are_cut(self, project: Path):
        """Random bytes (with newlines) over the last 1.5 KiB: cut as a torn tail, the table's
        events mirrored back; `up` does it by itself."""
        rows = rows_digest(project / DB)
        jsonl = project / JSONL
        size = jsonl.stat().st_size
        junk = random.Random(7).randbytes(1536).replace(b"{", b"\n")
        damaged = damage(jsonl, size - 1536, 1536, junk=junk)
        ok(schemalog(project, "up"))
        assert_mended(project, rows)
        (repair,) = [d for d in repairs(project) if d["what"] == "damaged_tail"]
        kept = Path(repair["saved_to"])
        assert damaged.endswith(kept.read_bytes()) and len(kept.read_bytes()) >= 1536
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert any(d["what"] == "mirrored_to_jsonl" for d in repairs(project))

    def test_garbage_line_is_removed(self, project: Path):
        """A garbage line between two events: the JSONL is rewritten without it."""
        rows = rows_digest(project / DB)
        jsonl = project / JSONL
        lines = jsonl.read_bytes().splitlines(keepends=True)
        jsonl.write_bytes(b"".join([*lines[:5], b"\x89PNG garbage\n", *lines[5:]]))
        ok(schemalog(project, "recover"))
        events = assert_mended(project, rows)
        (repair,) = [d for d in repairs(project) if d["what"] == "damaged_lines"]
        assert repair["lines"] == ["6"] and repair["restored_seqs"] == []
        assert [e.seq for e in events] == list(range(1, len(events) + 1))

    def test_unsynced_appends_garbled_after_a_killed_run_are_cut(self, project: Path):
        """The JSONL-first events of a run that died (never in the table) garbled: cut, and the
        run never existed."""
        rows = rows_digest(project / DB)
        jsonl = project / JSONL
        with jsonl.open("ab") as fh:
            fh.write(random.Random(3).randbytes(900).replace(b"{", b"\n") + b"\n")
        ok(schemalog(project, "up"))
        assert_mended(project, rows)


def forged_tail(root: Path, *kinds: Kind) -> list:
    """Events of `kinds` sealed after the table's last event (a JSONL-only tail)."""
    events = table_events(root / DB)
    out, prev, seq = [], events[-1].hash, events[-1].seq
    for kind in kinds:
        seq += 1
        data = {"backup_id": "v0000-x"} if kind is Kind.RESTORE_STARTED else {"command": "up"}
        event = seal(Draft("deadbeef0001", kind, None, data), seq=seq, prev=prev)
        out.append(event)
        prev = event.hash
    return out


class TestDamageTheTableCannotVouchFor:
    def test_a_run_s_unsynced_tail_garbled_before_its_last_line_is_cut(self, project: Path):
        """A dead run's JSONL-only `run_started`, `lock_acquired`: the first garbled, the second
        intact. Both are cut (kept aside): the state a power cut that lost them leaves."""
        rows = rows_digest(project / DB)
        one, two = forged_tail(project, Kind.RUN_STARTED, Kind.LOCK_ACQUIRED)
        jsonl = project / JSONL
        with jsonl.open("ab") as fh:
            fh.write(b"\x00" * len(encode(one)) + b"\n" + (encode(two) + "\n").encode())
        damaged = jsonl.read_bytes()
        ok(schemalog(project, "up"))
        assert_mended(project, rows)
        (repair,) = [d for d in repairs(project) if d["what"] == "damaged_lines"]
        assert repair["dropped_seqs"] == [two.seq]
        assert Path(repair["saved_to"]).read_bytes() == damaged

    def test_damage_before_a_restore_the_table_lacks_is_refused_naming_the_line(
        self, project: Path
    ):
        """Damage before a JSONL-only `restore_started`: exit 4 naming the line; nothing changed."""
        events = table_events(project / DB)
        one, two = forged_tail(project, Kind.RUN_STARTED, Kind.RESTORE_STARTED)
        jsonl = project / JSONL
        with jsonl.open("ab") as fh:
            fh.write(b"\x00" * len(encode(one)) + b"\n" + (encode(two) + "\n").encode())
        before = digests(project)
        proc = ok(schemalog(project, "recover"), 4)
        assert f"JSONL line {len(events) + 1} is not JSON" in proc.stderr
        assert f"ends at seq {events[-1].seq}" in proc.stderr
        status = document(ok(schemalog(project, "status", "--json")))
        assert any(a.startswith("needs a human: JSONL line") for a in status["recovery_actions"])
        ok(schemalog(project, "up"), 4)
        assert digests(project) == before

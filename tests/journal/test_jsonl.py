"""Tests for journal.jsonl: the sidecar JSONL file, its durability, corruption and torn tails."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemalog.journal import jsonl as jsonl_module
from schemalog.journal.chain import find_break
from schemalog.journal.codec import encode
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalCorrupt, JournalUnavailable
from schemalog.journal.events import Draft, Kind
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.store import DamagedRange, TornTail
from tests.journal.strategies import chain, events, json_objects

REPO = Path(__file__).resolve().parents[2]

#: Three events whose lines hold multi-byte UTF-8, escapes and nested data.
ORIGINALS = chain(
    [
        Draft("r1", Kind.RUN_STARTED, None, {"command": "up", "note": 'é☃𝄞\n"q"'}),
        Draft("r1", Kind.STEP_APPLIED, 12, {"name": "ünï", "nested": {"a": [1, None, True]}}),
        Draft("r1", Kind.RUN_FINISHED, None, {"outcome": "succeeded", "n": -7}),
    ]
)
LINES = [(encode(e) + "\n").encode("utf-8") for e in ORIGINALS]
FILE = b"".join(LINES)
LAST_LINE_START = len(FILE) - len(LINES[-1])

_no_fixture_check = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)


def _line_of(pos: int) -> int:
    """The 1-based number of the line that holds byte `pos` of FILE."""
    return FILE[:pos].count(b"\n") + 1


def _assert_detected(path: Path, pos: int, raw: bytes) -> None:
    """Reading `raw` (FILE with byte `pos` changed) detects the change, exactly as promised:
    a damaged range or an edited-line error naming the line, or events that fail the check."""
    path.write_bytes(raw)
    store = JsonlStore(path)
    if pos == len(FILE) - 1:
        # The final newline: the last line is no longer complete — a torn tail, nothing worse.
        result = store.read()
        assert result.events == tuple(ORIGINALS[:-1])
        assert result.torn == TornTail(offset=LAST_LINE_START, data=raw[LAST_LINE_START:])
        return
    try:
        result = store.read()
    except JournalCorrupt as exc:
        assert f"line {_line_of(pos)}" in str(exc)
        return
    assert result.torn is None
    if result.damaged:
        assert any(d.first_line <= _line_of(pos) <= d.last_line for d in result.damaged)
        assert sum(len(d.data) for d in result.damaged) + sum(
            len(encode(e).encode()) + 1 for e in result.events
        ) == len(raw)
        return
    assert result.events != tuple(ORIGINALS)
    assert len(result.events) == len(ORIGINALS)
    report = compare(ORIGINALS, result.events)
    assert report.tampered
    assert find_break(result.events) is not None or report.diverged_at is not None


class TestCreate:
    def test_file_is_created_with_mode_0600(self, jsonl, jsonl_path):
        """The first append creates the file readable and writable by its owner only."""
        old = os.umask(0)
        try:
            jsonl.append(events(1))
        finally:
            os.umask(old)
        assert stat.S_IMODE(jsonl_path.stat().st_mode) == 0o600

    def test_missing_file_reads_as_absent(self, jsonl):
        """A JSONL that does not exist reads as no events and `exists=False`."""
        result = jsonl.read()
        assert (result.events, result.torn, result.exists) == ((), None, False)
        assert not jsonl.exists()

    def test_unknown_durability_is_refused(self, jsonl_path):
        """A durability other than normal or full raises ValueError naming it."""
        with pytest.raises(ValueError, match="'sometimes'"):
            JsonlStore(jsonl_path, durability="sometimes")

    def test_lines_are_canonical_events(self, jsonl, jsonl_path):
        """Each event is one canonical line ending in a newline."""
        jsonl.append(ORIGINALS)
        assert jsonl_path.read_bytes() == FILE
        assert jsonl.exists()

    def test_append_after_close_reopens(self, jsonl):
        """Closing the store does not stop later appends."""
        evs = events(3)
        jsonl.append(evs[:1])
        jsonl.close()
        jsonl.append(evs[1:])
        assert jsonl.read().events == tuple(evs)


class TestDurability:
    @pytest.fixture
    def fsyncs(self, monkeypatch, jsonl_path):
        """A list that records each fsync of the JSONL file itself (not of its directory)."""
        calls: list[int] = []
        real = os.fsync

        def counting(fd):
            if jsonl_path.exists() and os.fstat(fd).st_ino == jsonl_path.stat().st_ino:
                calls.append(fd)
            real(fd)

        monkeypatch.setattr(os, "fsync", counting)
        return calls

    def test_full_fsyncs_every_append(self, jsonl_path, fsyncs):
        """With durability full, each append is followed by an fsync of the file."""
        store = JsonlStore(jsonl_path, durability="full")
        evs = events(4)
        for i, event in enumerate(evs, start=1):
            store.append([event])
            assert len(fsyncs) == i
        store.close()

    def test_normal_fsyncs_only_on_sync(self, jsonl_path, fsyncs):
        """With durability normal, appends do not fsync the file; sync() does."""
        store = JsonlStore(jsonl_path, durability="normal")
        store.append(events(3))
        store.append([])
        assert fsyncs == []
        store.sync()
        assert len(fsyncs) == 1
        store.close()

    def test_new_file_fsyncs_its_directory(self, jsonl_path, monkeypatch):
        """Creating the file fsyncs the directory so the new name survives a power loss."""
        dirs: list[int] = []
        real = os.fsync

        def recording(fd):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                dirs.append(os.fstat(fd).st_ino)
            real(fd)

        monkeypatch.setattr(os, "fsync", recording)
        store = JsonlStore(jsonl_path)
        store.append(events(1))
        assert dirs == [jsonl_path.parent.stat().st_ino]
        store.close()
        store.append([events(2)[1]])  # reopening an existing file
        assert len(dirs) == 1
        store.close()

    def test_sync_and_close_without_a_file_do_nothing(self, jsonl, fsyncs):
        """sync() and close() before any append neither fail nor create the file."""
        jsonl.sync()
        jsonl.close()
        assert fsyncs == []
        assert not jsonl.exists()

    def test_close_fsyncs_and_closes(self, jsonl, fsyncs):
        """close() fsyncs the file once and releases the descriptor."""
        jsonl.append(events(1))
        fd = jsonl._fd
        jsonl.close()
        assert fsyncs == [fd]
        with pytest.raises(OSError):
            os.fstat(fd)


class TestCorruptLines:
    def test_bad_line_in_the_middle_is_a_damaged_range(self, jsonl_path):
        """A garbage line between valid ones is reported as damaged line 2, not raised."""
        jsonl_path.write_bytes(LINES[0] + b"garbage\n" + LINES[2])
        result = JsonlStore(jsonl_path).read()
        assert result.events == (ORIGINALS[0], ORIGINALS[2])
        assert result.damaged == (
            DamagedRange(
                offset=len(LINES[0]),
                end=len(LINES[0]) + 8,
                first_line=2,
                last_line=2,
                reason="not JSON",
                data=b"garbage\n",
                prev_seq=1,
                next_seq=3,
            ),
        )

    def test_invalid_utf8_is_a_damaged_range_at_the_end(self, jsonl_path):
        """A last complete line that is not UTF-8 is damage after seq 2, with no event after it."""
        jsonl_path.write_bytes(LINES[0] + LINES[1] + b"\xff\xfe\n")
        (damage,) = JsonlStore(jsonl_path).read().damaged
        assert (damage.first_line, damage.reason, damage.prev_seq, damage.next_seq) == (
            3,
            "not UTF-8",
            2,
            None,
        )

    def test_empty_line_is_damage(self, jsonl_path):
        """An empty line between events is not silently skipped."""
        jsonl_path.write_bytes(LINES[0] + b"\n" + LINES[1])
        (damage,) = JsonlStore(jsonl_path).read().damaged
        assert (damage.lines, damage.reason, damage.data) == ("2", "not JSON", b"\n")

    def test_zero_page_merges_lines_into_one_damaged_range(self, jsonl_path):
        """A zero-filled 4 KiB page over a line boundary is one range naming every line it hit."""
        evs = events(60)
        raw = bytearray(b"".join((encode(e) + "\n").encode() for e in evs))
        raw[4096:8192] = bytes(4096)
        jsonl_path.write_bytes(bytes(raw))
        result = JsonlStore(jsonl_path).read()
        (damage,) = result.damaged
        assert damage.offset < 4096 < 8192 <= damage.end
        assert damage.reason == "not JSON"
        assert [e.seq for e in result.events] == [
            s for s in range(1, 61) if not damage.prev_seq < s < damage.next_seq
        ]
        assert raw[damage.offset : damage.end] == damage.data

    def test_consecutive_bad_lines_are_one_range(self, jsonl_path):
        """Adjacent undecodable lines form one range; separated ones form two."""
        jsonl_path.write_bytes(b"x\n\x00\n" + LINES[0] + b"[1]\n" + LINES[1])
        result = JsonlStore(jsonl_path).read()
        assert [(d.lines, d.reason, d.prev_seq, d.next_seq) for d in result.damaged] == [
            ("1-2", "not JSON", 0, 1),
            ("4", "not a JSON object", 1, 2),
        ]

    def test_an_edited_line_is_still_refused(self, jsonl_path):
        """A line that is a JSON object but not an event raises JournalCorrupt naming line 2."""
        jsonl_path.write_bytes(LINES[0] + b'{"seq":2}\n' + LINES[2])
        with pytest.raises(JournalCorrupt, match=r"line 2 is not a valid event") as info:
            JsonlStore(jsonl_path).read()
        assert info.value.exit_code == 4 and info.value.path == str(jsonl_path)

    def test_non_canonical_line_is_rejected(self, jsonl_path):
        """A valid JSON event with added spaces is rejected as edited."""
        spaced = LINES[1].replace(b'":', b'": ')
        jsonl_path.write_bytes(LINES[0] + spaced + LINES[2])
        with pytest.raises(JournalCorrupt, match="line 2 is not in canonical form"):
            JsonlStore(jsonl_path).read()

    def test_read_intact_refuses_damage_naming_the_line(self, jsonl_path):
        """read_intact (for a journal nothing can mend) raises JournalCorrupt at line 2."""
        jsonl_path.write_bytes(LINES[0] + b"\x00\x00\n" + LINES[2])
        with pytest.raises(JournalCorrupt, match=r"line 2 is not JSON") as info:
            JsonlStore(jsonl_path).read_intact()
        assert info.value.exit_code == 4

    @given(data=st.data())
    @settings(_no_fixture_check, max_examples=300)
    def test_any_single_byte_change_is_detected(self, tmp_path, data):
        """Changing any one byte of any complete line to any other value is detected on read."""
        pos = data.draw(st.integers(0, len(FILE) - 1), label="pos")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != FILE[pos]), label="byte")
        raw = bytearray(FILE)
        raw[pos] = new
        _assert_detected(tmp_path / "j.jsonl", pos, bytes(raw))

    def test_every_position_is_covered(self, tmp_path):
        """Every byte position, changed to a newline and to its neighbour value, is detected."""
        path = tmp_path / "j.jsonl"
        for pos, old in enumerate(FILE):
            for new in {0x0A, old ^ 0x01} - {old}:
                raw = bytearray(FILE)
                raw[pos] = new
                _assert_detected(path, pos, bytes(raw))


class TestTornTail:
    @given(
        data=json_objects,
        note=st.text(alphabet="é☃𝄞aZ", min_size=1, max_size=8),
        cut=st.floats(min_value=0, max_value=1, exclude_max=True),
        n=st.integers(0, 3),
    )
    @settings(_no_fixture_check, max_examples=80)
    def test_partial_line_is_a_torn_tail(self, tmp_path, data, note, cut, n):
        """A line cut anywhere before its newline (even inside a UTF-8 character) reads as torn."""
        evs = chain([Draft("r", Kind.JOURNAL_REPAIRED, None, {"n": note, "d": data})] * (n + 1))
        complete = b"".join((encode(e) + "\n").encode() for e in evs[:n])
        line = encode(evs[n]).encode()  # without its newline
        partial = line[: 1 + int(cut * len(line))]
        path = tmp_path / "j.jsonl"
        path.write_bytes(complete + partial)
        result = JsonlStore(path).read()
        assert result.events == tuple(evs[:n])
        assert result.torn == TornTail(offset=len(complete), data=partial)

    def test_split_utf8_character_is_torn_not_corrupt(self, jsonl_path):
        """A tail that ends inside a multi-byte character is torn, not a UTF-8 error."""
        line = (encode(ORIGINALS[0]) + "\n").encode()
        cut = line.index("𝄞".encode()) + 2
        jsonl_path.write_bytes(LINES[1] + line[:cut])
        result = JsonlStore(jsonl_path).read()
        assert result.events == (ORIGINALS[1],)
        assert result.torn == TornTail(offset=len(LINES[1]), data=line[:cut])

    def test_complete_file_has_no_torn_tail(self, jsonl):
        """A file that ends with a newline has no torn tail."""
        jsonl.append(ORIGINALS)
        assert jsonl.read().torn is None

    def test_cut_torn_tail_truncates_exactly(self, jsonl, jsonl_path):
        """cut_torn_tail removes the torn bytes and nothing else; appends then continue."""
        jsonl.append(ORIGINALS[:2])
        with open(jsonl_path, "ab") as fh:
            fh.write(LINES[2][:17])
        torn = jsonl.read().torn
        assert torn == TornTail(offset=len(LINES[0] + LINES[1]), data=LINES[2][:17])
        jsonl.cut_torn_tail(torn)
        assert jsonl_path.read_bytes() == LINES[0] + LINES[1]
        jsonl.append(ORIGINALS[2:])
        result = jsonl.read()
        assert result.events == tuple(ORIGINALS)
        assert result.torn is None


class TestUnavailable:
    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
    def test_unreadable_file_is_unavailable(self, jsonl, jsonl_path):
        """A file the process may not read raises JournalUnavailable naming the path."""
        jsonl.append(events(1))
        jsonl_path.chmod(0)
        try:
            with pytest.raises(JournalUnavailable, match="cannot read") as info:
                jsonl.read()
        finally:
            jsonl_path.chmod(0o600)
        assert info.value.path == str(jsonl_path)

    def test_path_that_is_a_directory_is_unavailable(self, tmp_path):
        """A JSONL path that cannot be read as a file raises JournalUnavailable, not OSError."""
        path = tmp_path / "dir.jsonl"
        path.mkdir()
        with pytest.raises(JournalUnavailable, match="cannot read the JSONL journal"):
            JsonlStore(path).read()

    def test_missing_directory_cannot_be_opened(self, tmp_path):
        """An append into a directory that does not exist raises JournalUnavailable."""
        store = JsonlStore(tmp_path / "nope" / "j.jsonl")
        with pytest.raises(JournalUnavailable, match="cannot open") as info:
            store.append(events(1))
        assert info.value.hint

    def test_write_error_is_unavailable(self, jsonl, monkeypatch):
        """A failed write (disk full) raises JournalUnavailable saying disk full; the file is
        left as it was."""
        jsonl.append(events(1))
        before = jsonl.path.read_bytes()

        def full(fd, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(JournalUnavailable, match="disk full") as info:
            jsonl.append(events(2)[1:])
        assert "left as it was" in info.value.state
        monkeypatch.undo()
        assert jsonl.path.read_bytes() == before

    def test_a_partial_write_is_cut_back(self, jsonl, monkeypatch):
        """A write that fails halfway leaves no partial line: the next append follows whole lines."""
        jsonl.append(events(1))
        real = os.write
        calls = []

        def half_then_full(fd, data):
            if not calls:
                calls.append(1)
                return real(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", half_then_full)
        with pytest.raises(JournalUnavailable):
            jsonl.append(events(2)[1:])
        monkeypatch.undo()
        jsonl.append(events(2)[1:])
        assert jsonl.read().events == tuple(events(2)) and jsonl.read().torn is None

    def test_short_writes_are_completed(self, jsonl, monkeypatch):
        """When the OS writes only part of the payload, the rest is written too."""
        real = os.write
        monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:10])))
        jsonl.append(ORIGINALS)
        monkeypatch.undo()
        assert jsonl.read().events == tuple(ORIGINALS)


class TestMidAppendFailpoint:
    def test_crash_mid_append_leaves_a_torn_tail(self, jsonl, jsonl_path, tmp_path):
        """A process killed by the mid_append failpoint dies by SIGKILL leaving half a line."""
        jsonl.append(ORIGINALS[:2])
        jsonl.close()
        line_file = tmp_path / "event.json"
        line_file.write_text(encode(ORIGINALS[2]), encoding="utf-8")
        script = textwrap.dedent(
            f"""
            from pathlib import Path
            from schemalog.journal.codec import decode
            from schemalog.journal.jsonl import JsonlStore
            event = decode(Path({str(line_file)!r}).read_text(encoding="utf-8"))
            JsonlStore(Path({str(jsonl_path)!r}), durability="full").append([event])
            print("survived")
            """
        )
        env = {**os.environ, "SCHEMALOG_FAILPOINT": "mid_append", "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, timeout=60, cwd=REPO
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
        assert b"survived" not in proc.stdout
        result = JsonlStore(jsonl_path).read()
        assert result.events == tuple(ORIGINALS[:2])
        assert result.torn == TornTail(offset=LAST_LINE_START, data=LINES[2][: len(LINES[2]) // 2])

    def test_module_uses_the_mid_append_failpoint(self):
        """The failpoint this test arms is one the failpoints module declares."""
        from schemalog.journal import failpoints

        assert "mid_append" in failpoints.NAMES
        assert jsonl_module.failpoints is failpoints

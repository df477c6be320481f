"""Tests for schemalog.engine.base.logs: the library's stdlib records (the application's
logging decides), and the CLI's structlog rendering of them (formats, levels, bound context,
reconfiguration)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import structlog

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.logs import (
    configure_logging,
    get_logger,
    reset_logging,
    silence_logging,
)
from schemalog.engine.migrator import Migrator
from tests.engine.conftest import BASIC, write_migrations

ANSI = "\x1b["


class FakeTTY(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class WriteOnly:
    """A stream with write and flush but no isatty."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset_structlog(monkeypatch):
    """Each test starts in library mode, without NO_COLOR, and leaves it so."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    structlog.reset_defaults()
    reset_logging()
    yield
    reset_logging()
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict]:
    """Every line written to `stream`, parsed as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestJsonFormat:
    def test_lines_are_json_with_bound_context(self):
        """json writes one JSON object per event, carrying run_id and version."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        log = get_logger(run_id="r-1")
        log.bind(version=3).info("step applied", ms=12)
        log.info("run finished")
        first, second = json_lines(out)
        assert first["event"] == "step applied"
        assert (first["run_id"], first["version"], first["ms"]) == ("r-1", 3, 12)
        assert first["level"] == "info"
        assert second["run_id"] == "r-1"
        assert "version" not in second

    def test_timestamp_is_utc_iso(self):
        """Every event has an ISO-8601 timestamp in UTC."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        before = datetime.now(UTC)
        get_logger().info("x")
        (line,) = json_lines(out)
        stamp = datetime.fromisoformat(line["timestamp"])
        assert stamp.utcoffset().total_seconds() == 0
        assert abs((stamp - before).total_seconds()) < 60

    def test_exception_is_a_string_field(self):
        """log.exception puts the traceback in an 'exception' field of the same JSON line."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            get_logger().exception("boom")
        (line,) = json_lines(out)
        assert line["level"] == "error"
        assert "ZeroDivisionError" in line["exception"]

    def test_non_json_values_do_not_break_the_line(self, tmp_path):
        """A value JSON cannot hold (a Path) is still written as a parseable line."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        get_logger().info("x", path=tmp_path)
        (line,) = json_lines(out)
        assert str(tmp_path) in line["path"]


class TestLevels:
    def test_default_is_info(self):
        """Without flags, info is shown and debug is not."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        get_logger().debug("hidden")
        get_logger().info("shown")
        assert [line["event"] for line in json_lines(out)] == ["shown"]

    def test_quiet_suppresses_info(self):
        """quiet shows warnings and errors only."""
        out = io.StringIO()
        configure_logging(fmt="json", quiet=True, stream=out)
        log = get_logger()
        log.info("hidden")
        log.warning("warned")
        log.error("failed")
        assert [line["event"] for line in json_lines(out)] == ["warned", "failed"]

    def test_verbose_shows_debug(self):
        """verbose shows debug events."""
        out = io.StringIO()
        configure_logging(fmt="json", verbose=True, stream=out)
        get_logger().debug("detail")
        assert [line["event"] for line in json_lines(out)] == ["detail"]

    def test_verbose_and_quiet_conflict(self):
        """verbose together with quiet is refused."""
        with pytest.raises(ConfigError, match="--verbose and --quiet"):
            configure_logging(verbose=True, quiet=True)


class TestHumanFormat:
    @pytest.mark.parametrize("fmt", ["human", "auto"])
    def test_non_tty_has_no_ansi(self, fmt):
        """human and auto on a non-terminal write plain text with key=value pairs."""
        out = io.StringIO()
        configure_logging(fmt=fmt, stream=out)
        get_logger(run_id="r-1").bind(version=2).warning("step applied")
        text = out.getvalue()
        assert ANSI not in text
        assert "step applied" in text
        assert "run_id=r-1" in text
        assert "version=2" in text
        assert "warning" in text

    @pytest.mark.parametrize("fmt", ["human", "auto"])
    def test_tty_is_coloured(self, fmt):
        """human and auto on a terminal use colours."""
        out = FakeTTY()
        configure_logging(fmt=fmt, stream=out)
        get_logger().info("coloured")
        assert ANSI in out.getvalue()

    def test_no_color_disables_colours(self, monkeypatch):
        """NO_COLOR turns colours off even on a terminal."""
        monkeypatch.setenv("NO_COLOR", "1")
        out = FakeTTY()
        configure_logging(fmt="human", stream=out)
        get_logger().info("plain")
        assert ANSI not in out.getvalue()

    def test_stream_without_isatty_is_plain(self):
        """A stream that cannot say whether it is a terminal gets plain text."""
        out = WriteOnly()
        configure_logging(fmt="auto", stream=out)  # type: ignore[arg-type]
        get_logger().info("plain")
        text = "".join(out.parts)
        assert "plain" in text
        assert ANSI not in text

    def test_closed_stream_is_not_a_tty(self):
        """Configuring on a closed stream does not fail (it is treated as no terminal)."""
        out = io.StringIO()
        out.close()
        configure_logging(fmt="human", stream=out)

    def test_json_is_not_used_by_auto(self):
        """auto on a non-terminal does not write JSON."""
        out = io.StringIO()
        configure_logging(fmt="auto", stream=out)
        get_logger().info("x")
        with pytest.raises(json.JSONDecodeError):
            json.loads(out.getvalue())


class TestConfiguration:
    def test_unknown_format_raises(self):
        """An unknown format is refused, naming it."""
        with pytest.raises(ConfigError, match="'xml'"):
            configure_logging(fmt="xml")

    def test_reconfigure_reaches_existing_loggers(self):
        """A logger obtained before a reconfiguration follows the new configuration."""
        first, second = io.StringIO(), io.StringIO()
        configure_logging(fmt="json", stream=first)
        log = get_logger(run_id="r")
        log.info("one")
        configure_logging(fmt="json", quiet=True, stream=second)
        log.info("hidden")
        log.warning("two")
        assert [line["event"] for line in json_lines(first)] == ["one"]
        assert [line["event"] for line in json_lines(second)] == ["two"]

    def test_default_stream_is_current_stderr(self, capsys):
        """Without a stream, events go to the sys.stderr of the time of the call, not stdout."""
        configure_logging(fmt="json")
        get_logger().info("to stderr")
        captured = capsys.readouterr()
        assert captured.out == ""
        assert json.loads(captured.err)["event"] == "to stderr"

    def test_silenced_drops_everything(self, capsys):
        """silence_logging drops every event (even errors) without a handler writing."""
        configure_logging(fmt="json")
        silence_logging()
        get_logger(run_id="r").error("dropped")
        assert capsys.readouterr().err == ""

    def test_the_cli_keeps_records_from_the_root_logger(self):
        """Configured by the CLI, records are rendered once, not also by the root's handlers."""
        out, root_out = io.StringIO(), io.StringIO()
        root_handler = logging.StreamHandler(root_out)
        logging.getLogger().addHandler(root_handler)
        try:
            configure_logging(fmt="json", stream=out)
            get_logger("run").info("once")
        finally:
            logging.getLogger().removeHandler(root_handler)
        assert [line["event"] for line in json_lines(out)] == ["once"]
        assert root_out.getvalue() == ""

    def test_existing_configuration_is_kept_by_get_logger(self):
        """get_logger does not replace a configuration made earlier."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        get_logger().info("kept")
        assert json_lines(out)[0]["event"] == "kept"


APP = """
import logging, sys
from schemalog import Migrator
logging.basicConfig(level=getattr(logging, sys.argv[1]), format="%(name)s|%(levelname)s|%(message)s")
Migrator(database=sys.argv[2], migrations=sys.argv[3]).upgrade()
print("done")
"""


class TestLibraryMode:
    def run_app(self, tmp_path, level: str) -> subprocess.CompletedProcess:
        """An application that sets its logging to `level`, then upgrades through Migrator."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        return subprocess.run(
            [sys.executable, "-c", APP, level, str(tmp_path / "app.db"), str(migrations)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def test_nothing_printed_when_the_application_set_warning(self, tmp_path):
        """An application at WARNING sees no schemalog line, on stderr or stdout."""
        done = self.run_app(tmp_path, "WARNING")
        assert done.stdout == "done\n"
        assert done.stderr == ""

    def test_the_application_at_info_gets_the_records(self, tmp_path):
        """At INFO the application's own handler prints schemalog.run records, its format."""
        done = self.run_app(tmp_path, "INFO")
        lines = [line for line in done.stderr.splitlines() if line.startswith("schemalog")]
        assert len(lines) == 3, done.stderr
        assert lines[0].startswith("schemalog.run|INFO|step applied version=1 name=create_items")

    def test_an_unconfigured_application_sees_nothing(self):
        """With no logging configured at all, even a warning reaches no stream (no lastResort)."""
        code = "from schemalog.engine.base.logs import get_logger; get_logger('run').error('x')"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert (done.stdout, done.stderr) == ("", "")

    def test_records_carry_event_and_fields(self, tmp_path, caplog):
        """Each step is one record on schemalog.run with its event and fields as attributes."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        with caplog.at_level(logging.INFO, logger="schemalog"):
            Migrator(database=tmp_path / "app.db", migrations=migrations).upgrade()
        steps = [r for r in caplog.records if r.name == "schemalog.run"]
        assert [r.schemalog_event for r in steps] == ["step applied"] * 3
        fields = steps[1].schemalog_fields
        assert (fields["version"], fields["name"], fields["direction"]) == (2, "create_tags", "up")
        assert fields["command"] == "up" and len(fields["run_id"]) == 12
        assert steps[1].getMessage().startswith("step applied version=2 name=create_tags")

    def test_a_record_names_its_caller(self, caplog):
        """The record's module and line are the caller's, not the logging facade's."""
        with caplog.at_level(logging.INFO, logger="schemalog"):
            get_logger("x").info("here")
        assert caplog.records[-1].module == "test_logs"

    def test_nothing_is_built_for_a_dropped_level(self, caplog, monkeypatch):
        """A level the logger drops builds no record at all."""
        made = []
        monkeypatch.setattr(logging.Logger, "makeRecord", lambda *a, **k: made.append(1))
        with caplog.at_level(logging.WARNING, logger="schemalog"):
            get_logger("run").info("dropped", version=1)
        assert made == []

    def test_exception_carries_exc_info(self, caplog):
        """log.exception gives the application the exception, as logging does."""
        with caplog.at_level(logging.INFO, logger="schemalog"):
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                get_logger().exception("boom", version=1)
        record = caplog.records[-1]
        assert record.levelno == logging.ERROR and record.exc_info[0] is ZeroDivisionError
        assert record.name == "schemalog"

    def test_message_quotes_values_with_spaces(self, caplog):
        """A field whose value has spaces (or is empty) is quoted in the message."""
        with caplog.at_level(logging.INFO, logger="schemalog"):
            get_logger().info("x", a="b c", e="", n=3)
        assert caplog.records[-1].getMessage() == "x a='b c' e='' n=3"

    def test_reset_gives_the_logger_back(self):
        """After the CLI's configuration, reset_logging lets records propagate again."""
        configure_logging(fmt="json", stream=io.StringIO())
        reset_logging()
        logger = logging.getLogger("schemalog")
        assert logger.propagate and logger.level == logging.NOTSET
        assert all(type(h) is logging.NullHandler for h in logger.handlers)


class TestCliRendering:
    def cli(self, tmp_path, *args: str) -> subprocess.CompletedProcess:
        """`schemalog --database ... --migrations ... ARGS up` in a subprocess."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        where = ["--database", str(tmp_path / "app.db"), "--migrations", str(migrations)]
        return subprocess.run(
            [sys.executable, "-m", "schemalog", *where, *args, "up"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        )

    def test_json_lines_from_the_stdlib_records(self, tmp_path):
        """`--log-format json` renders the library's records with structlog: one JSON object
        per step with event, level, timestamp and the fields."""
        lines = [
            json.loads(x)
            for x in self.cli(tmp_path, "--log-format", "json").stderr.split("\n")
            if x
        ]
        steps = [line for line in lines if line["event"] == "step applied"]
        assert [s["version"] for s in steps] == [1, 2, 3]
        assert {s["level"] for s in steps} == {"info"}
        assert all(s["command"] == "up" and s["timestamp"].endswith("Z") for s in steps)

    def test_verbose_human_lines(self, tmp_path):
        """`-v` shows the steps as human key=value lines."""
        err = self.cli(tmp_path, "-v").stderr
        assert "step applied" in err and "version=2" in err and "name=create_tags" in err

    def test_default_is_quiet(self, tmp_path):
        """Without -v or --log-format, no log line (the CLI's own output says what happened)."""
        assert "step applied" not in self.cli(tmp_path).stderr

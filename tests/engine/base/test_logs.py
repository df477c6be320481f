"""Tests for schemalog.engine.base.logs: formats, levels, bound context, reconfiguration."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import structlog

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.logs import configure_logging, get_logger

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
    """Each test starts unconfigured, without NO_COLOR, and leaves structlog unconfigured."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    structlog.reset_defaults()
    yield
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

    def test_unconfigured_get_logger_configures_defaults(self, capsys):
        """get_logger before any configuration logs info to stderr, never stdout."""
        assert not structlog.is_configured()
        log = get_logger(run_id="r")
        log.debug("hidden")
        log.info("shown")
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "shown" in captured.err
        assert "hidden" not in captured.err
        assert ANSI not in captured.err

    def test_existing_configuration_is_kept_by_get_logger(self):
        """get_logger does not replace a configuration made earlier."""
        out = io.StringIO()
        configure_logging(fmt="json", stream=out)
        get_logger().info("kept")
        assert json_lines(out)[0]["event"] == "kept"

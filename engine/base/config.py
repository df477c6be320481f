"""Configuration: where the settings of a command come from, and how they are read.

Four layers, highest first: flags > environment (`SCHEMALOG_<NAME>`) > config file
(`schemalog.toml`, or `[tool.schemalog]` in `pyproject.toml`) > defaults. Every layer is
converted by one cattrs converter, so a bad value is reported with its key, the value and
the flag, variable or file it came from, before anything runs. Only the CLI and
`Migrator.from_config` read configuration; `Migrator(...)` uses its arguments alone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.functions import FUNCTIONS_FORM, FunctionsSpec, check_functions
from schemalog.engine.base.settings import (
    CONFIG_FILE_NAME,
    ENV_PREFIX,
    SECONDS_FORM,
    SETTING_NAMES,
    SIZE_FORM,
    Settings,
    check_count,
    check_literal,
    check_seconds,
    check_size,
)

__all__ = ["PYPROJECT_TABLE", "find_config_file", "load_settings"]

PYPROJECT_TABLE = "tool.schemalog"
_CONFIG_ENV = ENV_PREFIX + "CONFIG"
_PATH_SETTINGS = ("database", "migrations", "backup_dir", "journal_key_file")

# An example of a good value per setting, used in hints.
_EXAMPLES: dict[str, object] = {
    "database": "app.db",
    "migrations": "migrations",
    "backup_dir": "backups",
    "lock_timeout": 30,
    "durability": "full",
    "integrity": "quick",
    "retention_count": 10,
    "retention_bytes": "500MB",
    "compression": "gzip",
    "transaction": "step",
    "retry": True,
    "log_format": "json",
    "functions": "myapp.db:register_sql",
    "journal_key_file": "/etc/myapp/schemalog.key",
}


# --- cattrs hooks: raw value (TOML, env string, flag) -> setting value -------------------

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE | re.ASCII)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{u + "b": 1000**n for n, u in enumerate("kmgt", start=1)},
    **{u + "ib": 1024**n for n, u in enumerate("kmgt", start=1)},
}


def _is_none(raw: object) -> bool:
    """Whether `raw` spells "no value": None, an empty string, or 'none'."""
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none"))


def _structure_path(raw: object, _type: object) -> Path:
    """A path from a non-empty string or path-like object."""
    if isinstance(raw, str | os.PathLike) and os.fspath(raw).strip():
        return Path(raw)
    msg = "expected a non-empty path"
    raise ValueError(msg)


def _structure_optional_path(raw: object, _type: object) -> Path | None:
    """A path, or None for None or an empty string."""
    if raw is None or raw == "":
        return None
    return _structure_path(raw, _type)


def _structure_seconds(raw: object, _type: object) -> float:
    """A number of seconds >= 0 from a number or a numeric string."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(SECONDS_FORM)
    try:
        return check_seconds(float(raw))
    except ValueError:
        raise ValueError(SECONDS_FORM) from None


def _structure_count(raw: object, _type: object) -> int | None:
    """A whole number >= 1 from an int or a digit string; None for none/empty."""
    if _is_none(raw):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return check_count(raw)
    try:
        value = int(raw) if isinstance(raw, str) else 0
    except ValueError:
        value = 0
    return check_count(value)


def _structure_size(raw: object, _type: object) -> int | None:
    """A byte count >= 1 from an int or a string such as '500MB' or '2GiB'; None for none."""
    if _is_none(raw):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return check_size(raw)
    match = _SIZE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None or match[2].lower() not in _SIZE_UNITS:
        raise ValueError(SIZE_FORM)
    from decimal import Decimal  # only for sizes written as text

    number = Decimal(match[1]) * _SIZE_UNITS[match[2].lower()]
    if number != number.to_integral_value():
        raise ValueError(SIZE_FORM)
    return check_size(int(number))


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_BOOL_FORM = "expected true or false"


def _structure_bool(raw: object, _type: object) -> bool:
    """A bool from a bool, or a string such as true/false, yes/no, 1/0, on/off."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError(_BOOL_FORM)


def _structure_functions(raw: object, _type: object) -> FunctionsSpec | None:
    """A `module:callable` spec from a string; None for an empty one."""
    if not isinstance(raw, str):
        raise ValueError(FUNCTIONS_FORM)
    if not raw.strip():
        return None
    spec = FunctionsSpec(raw.strip())
    check_functions(spec)
    return spec


def _structure_literal(raw: object, literal: Any) -> object:
    """A member of the Literal type `literal`."""
    return check_literal(raw, literal)


def _make_converter() -> cattrs.Converter:
    """The converter for every layer: raw mapping -> Settings, one error per bad value."""
    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook_func(lambda t: get_origin(t) is Literal, _structure_literal)
    converter.register_structure_hook(
        Settings,
        make_dict_structure_fn(
            Settings,
            converter,
            database=override(struct_hook=_structure_optional_path),
            migrations=override(struct_hook=_structure_path),
            backup_dir=override(struct_hook=_structure_optional_path),
            journal_key_file=override(struct_hook=_structure_optional_path),
            lock_timeout=override(struct_hook=_structure_seconds),
            retry=override(struct_hook=_structure_bool),
            retention_count=override(struct_hook=_structure_count),
            retention_bytes=override(struct_hook=_structure_size),
            functions=override(struct_hook=_structure_functions),
        ),
    )
    return converter


_CONVERTER = _make_converter()

# --- layers ------------------------------------------------------------------------------


@attrs.frozen
class _Layer:
    """The raw values one source gave, by setting name, and how to name that source."""

    kind: Literal["flag", "env", "file"]
    values: dict[str, object]
    keys: dict[str, str]  # setting name -> the key as the user spelled it
    base: Path  # relative paths from this source are relative to this directory
    file: Path | None = None
    table: str = ""

    def source(self, name: str) -> str:
        """Where the value of setting `name` came from, for messages."""
        key = self.keys[name]
        if self.kind == "flag":
            return f"flag {key}"
        if self.kind == "env":
            return f"environment variable {key}"
        return f"key {key!r} in {_describe_file(self.file, self.table)}"

    def hint(self, name: str) -> str:
        """How to fix the value of setting `name` in this source."""
        key, example = self.keys[name], _EXAMPLES[name]
        if self.kind == "flag":
            return f"pass e.g. {key} {example}"
        if self.kind == "env":
            return f"set e.g. {key}={example}, or unset it"
        return f"edit {self.file}: e.g. {key} = {json.dumps(example)}"


def _describe_file(path: Path | None, table: str) -> str:
    """A config file, with its table when it is not the top level."""
    return f"[{table}] of {path}" if table else str(path)


def _flag_layer(flags: Mapping[str, object], cwd: Path) -> _Layer:
    """The flags the user passed (None means not passed)."""
    values: dict[str, object] = {}
    keys: dict[str, str] = {}
    for key, value in flags.items():
        name = key.replace("-", "_")
        if name not in SETTING_NAMES:
            msg = f"unknown setting {key!r} passed as a flag"
            raise ConfigError(msg, hint="valid settings: " + ", ".join(SETTING_NAMES))
        if value is not None:
            values[name] = value
            keys[name] = "--" + name.replace("_", "-")
    return _Layer(kind="flag", values=values, keys=keys, base=cwd)


def _env_layer(env: Mapping[str, str], cwd: Path) -> _Layer:
    """The `SCHEMALOG_<NAME>` variables of known settings; all others are ignored."""
    values: dict[str, object] = {}
    keys: dict[str, str] = {}
    for name in SETTING_NAMES:
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = env[var]
            keys[name] = var
    return _Layer(kind="env", values=values, keys=keys, base=cwd)


def _file_layer(path: Path, table: str, data: Mapping[str, object]) -> _Layer:
    """The keys of a config file table; raises ConfigError for unknown or repeated keys."""
    where = _describe_file(path, table)
    values: dict[str, object] = {}
    keys: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in SETTING_NAMES:
            unknown.append(key)
        elif name in values:
            msg = f"both {keys[name]!r} and {key!r} are set in {where}"
            raise ConfigError(msg, hint=f"keep one of them in {path}", path=str(path))
        else:
            values[name] = value
            keys[name] = key
    if unknown:
        import difflib  # only to suggest a key

        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key.replace("-", "_"), SETTING_NAMES, n=1)
            parts.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
        noun = "key" if len(unknown) == 1 else "keys"
        msg = f"unknown {noun} {', '.join(parts)} in {where}"
        hint = f"valid keys ('-' or '_' alike): {', '.join(SETTING_NAMES)}"
        raise ConfigError(msg, hint=hint, path=str(path))
    return _Layer(kind="file", values=values, keys=keys, base=path.parent, file=path, table=table)


# --- config files ------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML document at `path`; raises ConfigError if unreadable or malformed."""
    import tomllib  # only when there is a file to read (start-up time)

    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except OSError as exc:
        msg = f"cannot read config file {path}: {exc.strerror or exc}"
        raise ConfigError(msg, hint="check the file and its permissions", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        msg = f"config file {path} is not UTF-8 text (byte {exc.start})"
        raise ConfigError(msg, hint="save it as UTF-8", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"config file {path} is not valid TOML: {exc}"
        raise ConfigError(msg, hint="fix the TOML syntax at that line", path=str(path)) from exc


def _table(path: Path, table: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """The dotted `table` of `document` ('' = top level); None when absent.

    Raises ConfigError when the name holds something other than a table.
    """
    node: Any = document
    for part in filter(None, table.split(".")):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, dict):
        msg = f"{table} in {path} is not a table"
        raise ConfigError(msg, hint=f"write it as [{table}]", path=str(path))
    return node


def _discover(cwd: Path) -> tuple[Path, str, dict[str, Any]] | None:
    """The config file in `cwd`, its table and that table's contents; None if there is none."""
    candidate = cwd / CONFIG_FILE_NAME
    if candidate.is_file():
        return candidate, "", _read_toml(candidate)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        data = _table(pyproject, PYPROJECT_TABLE, _read_toml(pyproject))
        if data is not None:
            return pyproject, PYPROJECT_TABLE, data
    return None


def find_config_file(cwd: Path) -> tuple[Path, str] | None:
    """The config file that applies in `cwd` and the table holding the settings.

    `schemalog.toml` (table "", the top level) is preferred; else `pyproject.toml` if it
    has a `[tool.schemalog]` table (table "tool.schemalog"); else None. Reads only.
    Raises ConfigError when a candidate cannot be read or parsed.
    """
    found = _discover(cwd)
    return None if found is None else found[:2]


def _explicit(config_file: Path, origin: str) -> tuple[Path, str, dict[str, Any]]:
    """The config file the user named (by `origin`), its table and contents."""
    if not config_file.is_file():
        what = "does not exist" if not config_file.exists() else "is not a file"
        msg = f"config file {config_file} (from {origin}) {what}"
        raise ConfigError(msg, hint=f"check the path given to {origin}", path=str(config_file))
    table = PYPROJECT_TABLE if config_file.name == "pyproject.toml" else ""
    data = _table(config_file, table, _read_toml(config_file))
    if data is None:
        msg = f"config file {config_file} (from {origin}) has no [{table}] table"
        raise ConfigError(msg, hint=f"add [{table}] to it", path=str(config_file))
    return config_file, table, data


# --- loading -----------------------------------------------------------------------------


def _anchor(path: Path, base: Path) -> Path:
    """`path` with `~` expanded, resolved against `base` when relative."""
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _structure(layer: _Layer, problems: list[tuple[_Layer, str, str]]) -> Settings | None:
    """The layer's values as Settings; on failure, append (layer, name, reason) and None."""
    try:
        return _CONVERTER.structure(layer.values, Settings)
    except ClassValidationError as exc:
        # Every hook checks what the validators check, so each error names its attribute.
        for error, note in exc.group_exceptions()[0]:
            problems.append((layer, note.name, str(error)))
        return None


def _raise_problems(problems: list[tuple[_Layer, str, str]]) -> None:
    """Raise one ConfigError naming every bad value, its source and a fix for the first."""
    lines = [
        f"bad value {layer.values[name]!r} for {name} from {layer.source(name)}: {reason}"
        for layer, name, reason in problems
    ]
    first = problems[0][0]
    raise ConfigError(
        "; ".join(lines),
        hint=first.hint(problems[0][1]),
        path=(str(first.file) if first.file else None),
    )


def load_settings(
    *,
    flags: Mapping[str, object],
    env: Mapping[str, str],
    cwd: Path,
    config_file: Path | None = None,
) -> Settings:
    """The settings for a command: flag > env > config file > default, per setting.

    `flags` maps setting names (`backup_dir` or `backup-dir`) to the values the user passed;
    None means not passed. `env` is read for `SCHEMALOG_<NAME>` of known settings only.
    `config_file` (from `--config`; else `SCHEMALOG_CONFIG`) replaces discovery in `cwd`.
    Relative paths are anchored at the config file's directory for file values and at
    `cwd` otherwise, so every path in the result is absolute when `cwd` is.

    Raises ConfigError naming the key, the value and its source when a value is bad, a file
    key is unknown, the named config file is missing, or a config file is malformed.
    """
    if config_file is not None:
        found = _explicit(_anchor(Path(config_file), cwd), "--config")
    elif env.get(_CONFIG_ENV):
        found = _explicit(_anchor(Path(env[_CONFIG_ENV]), cwd), _CONFIG_ENV)
    else:
        found = _discover(cwd)
    layers = [_file_layer(*found)] if found is not None else []
    layers += [_env_layer(env, cwd), _flag_layer(flags, cwd)]  # lowest precedence first

    chosen: dict[str, object] = {}
    bases: dict[str, Path] = {}
    problems: list[tuple[_Layer, str, str]] = []
    for layer in layers:
        structured = _structure(layer, problems)
        if structured is not None:
            for name in layer.values:
                chosen[name] = getattr(structured, name)
                bases[name] = layer.base
                if isinstance(chosen[name], FunctionsSpec):  # its errors name its source
                    chosen[name] = attrs.evolve(chosen[name], source=layer.source(name))
    if problems:
        _raise_problems(problems)

    for name in _PATH_SETTINGS:
        value = chosen.get(name, getattr(Settings(), name))
        if value is not None:
            chosen[name] = _anchor(value, bases.get(name, cwd))
    return attrs.evolve(Settings(), **chosen)

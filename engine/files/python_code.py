"""A `.py` migration's code: executed only when the migration is to run, or read without
executing it (`literal_verify`) for the read-only commands.

The module text (already normalised, see `engine.files.migration`) is compiled and executed
once under a private module name that is in `sys.modules` only while it runs. It must define
`up` (SQL text or a function taking the connection) and may define `down` (the same, or
None), `verify` (one query or a list/tuple of queries), `transactional` and `foreign_keys`
(bools). Its docstring is the description. Other module-level names are ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.sqlsplit import find_untakeable, is_blank_sql, split_statements

if TYPE_CHECKING:
    import ast

# `ast`, `inspect` and `importlib.util` are imported where they are used: a command that runs
# no migration code (status, a no-op up) does not pay for them at start-up.

__all__ = ["check_syntax", "literal_verify", "load_python"]

_MODULE_PREFIX = "_schemalog_migration_"


def load_python(path: Any, version: int, text: str, checksum: str) -> dict[str, object]:
    """Execute the module text under a private name; its checked attributes as Migration fields.

    Raises MigrationFileError naming the file (syntax error with its line, exception while
    loading, missing or empty `up`, a wrong type).
    """
    module = _execute_module(path, version, text, checksum)
    namespace = vars(module)
    if "up" not in namespace:
        msg = f"{path.name}: defines no `up`"
        hint = 'define up = "SQL ..." or def up(conn): ...'
        raise MigrationFileError(msg, path=str(path), hint=hint)
    up = _step(path, "up", namespace["up"])
    if up is None:
        msg = f"{path.name}: `up` is None; it must be SQL text or a function"
        raise MigrationFileError(msg, path=str(path))
    import inspect

    doc = namespace.get("__doc__")
    return {
        "description": inspect.cleandoc(doc) if isinstance(doc, str) else "",
        "up": up,
        "down": _step(path, "down", namespace.get("down")),
        "verify": _verify(path, namespace.get("verify", ())),
        "transactional": _flag(path, "transactional", namespace.get("transactional", True)),
        "foreign_keys": _flag(path, "foreign_keys", namespace.get("foreign_keys", True)),
    }


def _execute_module(path: Any, version: int, text: str, checksum: str) -> ModuleType:
    """Compile and run `text` as a module at `path`; it is in `sys.modules` only meanwhile."""
    try:
        code = compile(text, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        msg = f"{path.name}: syntax error at line {exc.lineno}: {exc.msg}"
        raise MigrationFileError(msg, path=str(path)) from exc
    module_name = f"{_MODULE_PREFIX}{version}_{checksum[:8]}"
    import importlib.util

    spec = importlib.util.spec_from_file_location(module_name, str(path))
    if spec is None:  # pragma: no cover - only for suffixes importlib does not know
        msg = f"{path.name}: cannot be loaded as a Python module"
        raise MigrationFileError(msg, path=str(path))
    module = importlib.util.module_from_spec(spec)
    # The module is registered while its code runs (dataclasses, typing and pickle look
    # themselves up there) and never afterwards, whatever happens.
    sys.modules[module_name] = module
    try:
        exec(code, vars(module))
    except (Exception, SystemExit) as exc:
        line = _line_in(path, exc.__traceback__)
        where = f" at line {line}" if line is not None else ""
        msg = f"{path.name}: raised {type(exc).__name__}{where} while loading: {exc}"
        raise MigrationFileError(msg, path=str(path)) from exc
    finally:
        sys.modules.pop(module_name, None)
    return module


def check_syntax(path: Any, text: str) -> None:
    """Raise MigrationFileError (with the line) if the module text does not compile; runs
    nothing."""
    try:
        compile(text, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        msg = f"{path.name}: syntax error at line {exc.lineno}: {exc.msg}"
        raise MigrationFileError(msg, path=str(path)) from exc


def _line_in(path: Any, tb: TracebackType | None) -> int | None:
    """The line of the innermost traceback frame that runs code of `path`, if any."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _step(path: Any, attr: str, value: object) -> Any:
    """Check an `up`/`down` value: SQL text, a one-argument callable, or None (blank SQL)."""
    if value is None:
        return None
    if isinstance(value, str):
        _refuse_untakeable(path, f"`{attr}`", value)
        if is_blank_sql(value):
            if attr == "up":
                msg = f"{path.name}: `up` holds no SQL statement"
                raise MigrationFileError(msg, path=str(path))
            return None
        return value
    if callable(value):
        _check_signature(path, attr, value)
        return value
    msg = (
        f"{path.name}: `{attr}` must be SQL text or a function taking the connection, "
        f"not {type(value).__name__}"
    )
    raise MigrationFileError(msg, path=str(path))


def _check_signature(path: Any, attr: str, fn: Callable[..., object]) -> None:
    """Refuse a callable that cannot be called with exactly one positional argument."""
    import inspect

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: accept
        return
    try:
        signature.bind(object())
    except TypeError as exc:
        msg = f"{path.name}: `{attr}` must take one argument, the connection ({exc})"
        hint = f"def {attr}(conn): ..."
        raise MigrationFileError(msg, path=str(path), hint=hint) from exc


def _refuse_untakeable(path: Any, what: str, sql: str) -> None:
    """Refuse SQL text holding a character SQLite cannot take (NUL, lone surrogate)."""
    problem = find_untakeable(sql)
    if problem is not None:
        msg = f"{path.name}: {what} contains {problem}"
        raise MigrationFileError(msg, path=str(path))


def _verify(path: Any, value: object) -> tuple[str, ...]:
    """Check `verify`: one query or a list/tuple of queries; each becomes its statements."""
    items: list[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    elif value is None:
        items = []
    else:
        msg = f"{path.name}: `verify` must be a query or a list of queries, not {type(value).__name__}"
        raise MigrationFileError(msg, path=str(path))
    queries: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            msg = f"{path.name}: `verify` item {index} must be a query string, not {type(item).__name__}"
            raise MigrationFileError(msg, path=str(path))
        _refuse_untakeable(path, f"`verify` item {index}", item)
        statements = split_statements(item)
        if not statements:
            msg = f"{path.name}: `verify` item {index} holds no query"
            raise MigrationFileError(msg, path=str(path))
        queries.extend(statements)
    return tuple(queries)


def _flag(path: Any, attr: str, value: object) -> bool:
    """Check an option that must be exactly True or False."""
    if not isinstance(value, bool):
        msg = f"{path.name}: `{attr}` must be True or False, not {value!r}"
        raise MigrationFileError(msg, path=str(path))
    return value


def literal_verify(path: Any, text: str) -> tuple[str, ...] | None:
    """The `verify` queries of a `.py` migration, read from its text without running it.

    Only a module-level `verify = <literal>` (or an annotated one) counts: the queries are
    `ast.literal_eval` of the last such assignment. None when the module binds `verify` in
    any other way (a function, an import, a computed value, inside an `if`), when it cannot be
    parsed, or when the value is not queries: the caller then skips the queries and says so.
    Runs nothing.
    """
    import ast

    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError):
        return None
    value: object = ()
    for node in tree.body:
        target = _assigned_value(node)
        if target is not _NOT_VERIFY:
            if target is _UNKNOWN:
                return None
            value = target
        elif _binds_verify(node):
            return None
    try:
        return _verify(path, value)
    except MigrationFileError:
        return None


_NOT_VERIFY = object()
_UNKNOWN = object()


def _assigned_value(node: ast.stmt) -> object:
    """The literal assigned to `verify` by `node`; _UNKNOWN for another value; _NOT_VERIFY if
    `node` is no plain assignment to `verify`."""
    import ast

    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if "verify" not in names:
            return _NOT_VERIFY
        value_node = node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        if node.target.id != "verify":
            return _NOT_VERIFY
        if node.value is None:
            return _UNKNOWN
        value_node = node.value
    else:
        return _NOT_VERIFY
    try:
        return ast.literal_eval(value_node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _binds_verify(node: ast.stmt) -> bool:
    """Whether `node` may bind the module-level name `verify` in a way not read literally."""
    import ast

    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == "verify"
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) in ("verify", "*") for a in node.names)
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Name)
            and child.id == "verify"
            and not isinstance(child.ctx, ast.Load)
        ):
            return True
        if isinstance(child, ast.Global | ast.Nonlocal) and "verify" in child.names:
            return True
        if (
            isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and child.name == "verify"
        ):
            return True
    return False

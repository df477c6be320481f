"""The journal key: the secret that turns the journal's hash chain into HMAC-SHA-256.

`journal_key_file` names a file holding the key: its bytes, with one trailing newline
removed (so `openssl rand -hex 32 > schemalog.key` works), at least 16 bytes. The key is read
when a command opens the database; a file that cannot be read, is empty or too short is a
configuration error (exit 2, nothing was opened). What a keyed chain detects is in
`schemalog help events`.
"""

from __future__ import annotations

from pathlib import Path

from schemalog.engine.base.errors import ConfigError

__all__ = ["MIN_KEY_BYTES", "read_journal_key"]

#: The shortest key accepted (HMAC-SHA-256 keys of 32 random bytes are recommended).
MIN_KEY_BYTES = 16


def read_journal_key(path: Path | None) -> bytes | None:
    """The key in the file `path` (None when no key file is set). Raises ConfigError."""
    if path is None:
        return None
    hint = (
        "point journal_key_file (SCHEMALOG_JOURNAL_KEY_FILE, --journal-key-file) at a readable "
        f"file of at least {MIN_KEY_BYTES} bytes, e.g. made by `openssl rand -hex 32`"
    )
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        msg = f"cannot read the journal key file {path}: {exc.strerror or exc}"
        raise ConfigError(msg, path=str(path), hint=hint) from exc
    key = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    if len(key) < MIN_KEY_BYTES:
        msg = f"the journal key file {path} holds {len(key)} bytes, fewer than {MIN_KEY_BYTES}"
        raise ConfigError(msg, path=str(path), hint=hint)
    return key

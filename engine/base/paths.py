"""Where schemalog keeps its files next to a database: names live here and nowhere else."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class DatabasePaths:
    """The files belonging to one database `app.db` (see the contract in DESIGN.md)."""

    database: Path
    backup_dir: Path

    @classmethod
    def for_database(
        cls, database: Path | str, backup_dir: Path | str | None = None
    ) -> DatabasePaths:
        """Paths for `database`; `backup_dir` defaults to `<database>.backups/`."""
        db = Path(database)
        bdir = Path(backup_dir) if backup_dir is not None else db.with_name(db.name + ".backups")
        return cls(database=db, backup_dir=bdir)

    @property
    def jsonl(self) -> Path:
        """The sidecar journal `<database>.journal.jsonl`."""
        return self.database.with_name(self.database.name + ".journal.jsonl")

    @property
    def lock(self) -> Path:
        """The migration lock file `<database>.lock`."""
        return self.database.with_name(self.database.name + ".lock")

    @property
    def wal(self) -> Path:
        """SQLite's write-ahead log `<database>-wal`."""
        return self.database.with_name(self.database.name + "-wal")

    @property
    def shm(self) -> Path:
        """SQLite's shared-memory index `<database>-shm`."""
        return self.database.with_name(self.database.name + "-shm")

    @property
    def rollback_journal(self) -> Path:
        """SQLite's rollback journal `<database>-journal`."""
        return self.database.with_name(self.database.name + "-journal")

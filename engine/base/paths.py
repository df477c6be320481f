"""Where schemalog keeps its files next to a database: names live here and nowhere else."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class DatabasePaths:
    """The files belonging to one database `app.db` (`schemalog help library 'files next to'`)."""

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

    @property
    def sqlite_files(self) -> tuple[Path, ...]:
        """The database file and SQLite's own files beside it, in the order to preserve them."""
        return (self.database, self.wal, self.rollback_journal, self.shm)

    def backup_file(self, recorded: str) -> Path:
        """Where the backup file the journal recorded as `recorded` is now.

        Records hold the file name, relative to the backup directory, so a database moved
        with its sidecar files keeps its backups; older records hold an absolute path, used
        while it exists. The file is looked for in the configured backup directory, then in
        the default one (`<database>.backups/`, where a run with another setting put it);
        when it is in neither, the configured location is returned (and reported missing).
        """
        path = Path(recorded)
        if path.is_absolute() and path.exists():
            return path
        default = self.database.with_name(self.database.name + ".backups")
        for directory in dict.fromkeys((self.backup_dir, default)):
            if (directory / path.name).exists():
                return directory / path.name
        return self.backup_dir / path.name

"""The imperative shell: everything that touches SQLite, files, locks, signals and processes —
the session and its run, the lock, backups, preservation and restore, the executor, recovery."""

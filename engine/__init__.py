"""schemalog's engine: migrations, planning, execution, lock, backups, recovery, CLI."""

"""The commands: one module per group, one function per command (the library's entry points;
the CLI and `Migrator` call them with the same options)."""

"""schemalog's engine, in layers that import only downward: `cli` → `commands` → `shell` →
`core` and `files` → `base` → `schemalog.journal` (`schemalog help architecture`)."""

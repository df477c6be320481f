"""Base: what every layer above uses — errors, settings and configuration, paths, the
connection primitive, the context of a command, logs and the terminal check."""

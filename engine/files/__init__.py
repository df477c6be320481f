"""The migration files: one file's value and loading (`migration`), the set of files and its
checks (`registry`), and SQL splitting (`sqlsplit`)."""

"""`python -m schemalog`: the command line."""

from schemalog.engine.cli import main

main()

"""Lint's analyzers: the rules and findings (`rules`), what a statement does (`statements`), the
rules that need only the file (`static`) and those that read a scratch copy's data (`data`).

`engine.commands.lint` runs them on a scratch copy of the database; `schemalog help lint` documents every
code with an example and a fix.
"""

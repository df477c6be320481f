"""The user documentation, shipped inside the package as `schemalog.docs` (Markdown files).

Read it with `schemalog help [TOPIC]`; nothing here is code.
"""

"""The pure core: values in, values out, no I/O — planning, diagnosis of a journal and a
database, history, backup retention, the schema fingerprint."""

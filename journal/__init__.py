"""The event log of schemalog: events, codec, hash chain, the two stores and replay.

This package knows nothing about migrations beyond event payloads; `engine`
depends on it, never the reverse.
"""

"""The EventStore contract, run against both stores (as eventsourcing runs its recorders)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.store import EventStore, ReadResult
from schemalog.journal.table import TableStore
from tests.journal.conftest import connect
from tests.journal.strategies import chain, drafts, events

StoreFactory = Callable[[], EventStore]


@pytest.fixture(params=["jsonl", "table"])
def make_store(request, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of fresh, empty stores of one kind (the table store set up by `ensure()`)."""
    counter = itertools.count()
    opened: list = []

    def jsonl() -> EventStore:
        store = JsonlStore(tmp_path / f"{next(counter)}.journal.jsonl")
        opened.append(store)
        return store

    def table() -> EventStore:
        conn = connect(tmp_path / f"{next(counter)}.db")
        opened.append(conn)
        store = TableStore(conn)
        store.ensure()
        return store

    yield {"jsonl": jsonl, "table": table}[request.param]
    for thing in opened:
        thing.close()


class TestEventStoreContract:
    def test_store_satisfies_the_protocol(self, make_store):
        """Both stores offer `read` and `append` with the protocol's meaning."""
        store = make_store()
        assert callable(store.read)
        assert callable(store.append)
        assert isinstance(store.read(), ReadResult)

    def test_empty_store_reads_empty(self, make_store):
        """A fresh store holds no events and no torn tail."""
        result = make_store().read()
        assert result.events == ()
        assert result.torn is None

    def test_append_then_read_returns_the_same_events_in_order(self, make_store):
        """Events read back are equal to those appended, in seq order."""
        store = make_store()
        evs = events(5)
        store.append(evs)
        result = store.read()
        assert result.events == tuple(evs)
        assert [e.seq for e in result.events] == [1, 2, 3, 4, 5]
        assert result.exists

    def test_append_in_several_batches(self, make_store):
        """Appending in batches gives the concatenation of the batches."""
        store = make_store()
        evs = events(6)
        store.append(evs[:1])
        store.append(evs[1:4])
        store.append([])
        store.append(evs[4:])
        assert store.read().events == tuple(evs)

    def test_read_is_repeatable(self, make_store):
        """Reading does not change what a later read returns."""
        store = make_store()
        store.append(events(3))
        assert store.read() == store.read()

    def test_stores_hold_each_its_own_events(self, make_store):
        """Two stores of the same kind do not see each other's events."""
        a, b = make_store(), make_store()
        a.append(events(2))
        assert b.read().events == ()

    @given(batches=st.lists(st.lists(drafts(), max_size=4), max_size=5))
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15)
    def test_any_batches_read_back_identically(self, make_store, batches):
        """Any events, appended in any batching, read back identically (unicode, nesting, nulls)."""
        store = make_store()
        evs = chain(d for batch in batches for d in batch)
        i = 0
        for batch in batches:
            store.append(evs[i : i + len(batch)])
            i += len(batch)
        assert store.read().events == tuple(evs)


class TestSetup:
    def test_table_needs_ensure_before_its_first_append(self, tmp_path):
        """Unlike the JSONL, the table store must be set up by `ensure()` before it can append."""
        conn = connect(tmp_path / "app.db")
        try:
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                TableStore(conn).append(events(1))
        finally:
            conn.close()

    def test_jsonl_needs_no_setup(self, tmp_path):
        """The JSONL store creates its file on the first append."""
        store = JsonlStore(tmp_path / "j.jsonl")
        store.append(events(1))
        store.close()
        assert store.read().events == tuple(events(1))

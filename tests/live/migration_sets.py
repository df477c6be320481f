"""The migration files the live scenarios run, as `{file name: text}`.

Migration 001 creates the application's table (`app_events`, which the writer fills) and a
`ballast` table that gives the database some size (so a backup takes a while and the window
between backup and run is real). No later migration touches `app_events`: every row the
writer committed must still be there at the end, unless a command said it discarded it.
"""

from __future__ import annotations

import textwrap

from tests.live.app_writer import CREATE as APP_TABLE_DDL

__all__ = [
    "base",
    "failing_nontransactional",
    "failing_step",
    "many",
    "schema_changes",
    "slow",
]


def base(ballast_rows: int = 2000, blob_bytes: int = 1000) -> dict[str, str]:
    """001: the application's table, and `ballast_rows` x `blob_bytes` of ballast."""
    return {
        "001_app_tables.py": f'''
            """The application's table and some ballast.

            Impact: two new tables; the ballast holds {ballast_rows} random blobs.
            """

            up = """
            {APP_TABLE_DDL};
            CREATE TABLE ballast (id INTEGER PRIMARY KEY, blob BLOB NOT NULL);
            INSERT INTO ballast (blob)
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ballast_rows})
                SELECT randomblob({blob_bytes}) FROM c;
            """
            verify = ["SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'app_events'"]
            '''
    }


def schema_changes() -> dict[str, str]:
    """002-005: a new table with rows, a table rebuild, an index, a column; all reversible."""
    return {
        "002_customers.py": '''
            """Customers.

            Impact: a new table with 500 rows.
            """

            up = """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
            INSERT INTO customers (name, email)
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
                SELECT 'customer ' || x, CASE WHEN x % 3 THEN 'c' || x || '@example.org' END FROM c;
            """
            down = "DROP TABLE customers;"
            verify = ["SELECT COUNT(*) = 500 FROM customers"]
            ''',
        "003_rebuild_customers.py": '''
            """Make customers.email NOT NULL (a table rebuild).

            Impact: copies the customers table once.
            """

            foreign_keys = False
            up = """
            CREATE TABLE customers_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL DEFAULT '');
            INSERT INTO customers_new (id, name, email) SELECT id, name, coalesce(email, '') FROM customers;
            DROP TABLE customers;
            ALTER TABLE customers_new RENAME TO customers;
            """
            down = """
            CREATE TABLE customers_old (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
            INSERT INTO customers_old (id, name, email) SELECT id, name, nullif(email, '') FROM customers;
            DROP TABLE customers;
            ALTER TABLE customers_old RENAME TO customers;
            """
            verify = ["SELECT COUNT(*) = 500 FROM customers"]
            ''',
        "004_index_customers_email.sql": """
            -- Index customers by email.
            -- Impact: one index over 500 rows.
            -- migrate:up
            CREATE INDEX idx_customers_email ON customers (email);
            -- migrate:down
            DROP INDEX idx_customers_email;
            """,
        "005_customer_note.sql": """
            -- A note per customer.
            -- Impact: a new nullable column.
            -- migrate:up
            ALTER TABLE customers ADD COLUMN note TEXT;
            -- migrate:down
            ALTER TABLE customers DROP COLUMN note;
            """,
    }


def failing_step() -> dict[str, str]:
    """002-005 where 004 (the third of the four) fails on its second statement."""
    files = schema_changes()
    files["004_index_customers_email.sql"] = """
        -- Index customers by email, then a mistake.
        -- Impact: none, it fails.
        -- migrate:up
        CREATE INDEX idx_customers_email ON customers (email);
        INSERT INTO no_such_table (x) VALUES (1);
        -- migrate:down
        DROP INDEX idx_customers_email;
        """
    return files


def failing_nontransactional() -> dict[str, str]:
    """002-005 where 004 is non-transactional: VACUUM, then a failing statement."""
    files = schema_changes()
    files["004_index_customers_email.sql"] = """
        -- Compact the database, then a mistake.
        -- Impact: VACUUM rewrites the whole file.
        -- migrate:up transaction:false
        VACUUM;
        INSERT INTO no_such_table (x) VALUES (1);
        """
    return files


def slow(rows: int, *, writes: bool = False) -> dict[str, str]:
    """002-004 where 003 runs one long statement: a recursive CTE counting `rows` rows that
    writes one row, or (`writes`) one row in 300 with a 200-byte blob (megabytes, more than
    SQLite's page cache holds, so in rollback mode it must take the exclusive lock early)."""
    if writes:
        body = f"""
            INSERT INTO slow_fill (x, pad)
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
                SELECT x, randomblob(200) FROM c WHERE x % 300 = 0;
            """
    else:
        body = f"""
            INSERT INTO slow_marks (n)
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
                SELECT count(*) FROM c;
            """
    return {
        "002_slow_tables.sql": """
            -- Tables for the slow step's result.
            -- migrate:up
            CREATE TABLE slow_marks (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
            CREATE TABLE slow_fill (x INTEGER PRIMARY KEY, pad BLOB NOT NULL);
            -- migrate:down
            DROP TABLE slow_fill;
            DROP TABLE slow_marks;
            """,
        "003_slow_statement.sql": f"""
            -- One long statement (seconds).
            -- Impact: holds the write lock while it runs.
            -- migrate:up
            {textwrap.indent(textwrap.dedent(body).strip(), " " * 12).lstrip()}
            -- migrate:down
            DELETE FROM slow_fill;
            DELETE FROM slow_marks;
            """,
        "004_after_slow.sql": """
            -- An index after the slow step.
            -- migrate:up
            CREATE INDEX idx_slow_marks_n ON slow_marks (n);
            -- migrate:down
            DROP INDEX idx_slow_marks_n;
            """,
    }


def many(count: int) -> dict[str, str]:
    """002..count+1: `count` small typical migrations (tables with rows and an index, columns,
    a table rebuild every tenth), for the latency measurement."""
    files: dict[str, str] = {}
    last = None  # the newest table tN
    for i in range(1, count + 1):
        version = i + 1
        if last is not None and i % 10 == 0:
            files[f"{version:03d}_rebuild_{last}.py"] = f'''
                """Rebuild {last} with a NOT NULL label."""

                foreign_keys = False
                up = """
                CREATE TABLE {last}_new (id INTEGER PRIMARY KEY, label TEXT NOT NULL DEFAULT '', n INTEGER);
                INSERT INTO {last}_new (id, label, n) SELECT id, coalesce(label, ''), n FROM {last};
                DROP TABLE {last};
                ALTER TABLE {last}_new RENAME TO {last};
                CREATE INDEX idx_{last}_n ON {last} (n);
                """
                '''
        elif last is not None and i % 3 == 0:
            files[f"{version:03d}_column_{last}_{i}.sql"] = f"""
                -- A column on {last}.
                -- migrate:up
                ALTER TABLE {last} ADD COLUMN extra_{i} TEXT;
                UPDATE {last} SET extra_{i} = 'x' || id;
                """
        else:
            last = f"t{i}"
            files[f"{version:03d}_table_{last}.sql"] = f"""
                -- Table {last} with 200 rows and an index.
                -- migrate:up
                CREATE TABLE {last} (id INTEGER PRIMARY KEY, label TEXT, n INTEGER);
                INSERT INTO {last} (label, n)
                    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200)
                    SELECT 'label ' || x, x % 17 FROM c;
                CREATE INDEX idx_{last}_n ON {last} (n);
                """
    return files

"""Migration sets for the lint tests: a clean set, and one with exactly one problem per file.

`BASE` is applied and filled with rows (`ROWS`) before the problem files are linted as pending
migrations on a copy of the database; `PROBLEMS` maps each problem file to the one code lint
must report for it.
"""

from __future__ import annotations

BASE = {
    "001_initial.sql": """\
-- migrate:up
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, nickname TEXT);
CREATE TABLE archive (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE, total INTEGER);
CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT);
CREATE VIEW v_products AS SELECT id, title FROM products;
CREATE TABLE big (id INTEGER PRIMARY KEY, v INTEGER);
-- migrate:down
DROP TABLE big;
DROP VIEW v_products;
DROP TABLE products;
DROP TABLE invoices;
DROP TABLE customers;
DROP TABLE archive;
DROP TABLE users;
""",
}

ROWS = """
INSERT INTO users (email, name, nickname) VALUES ('a@x', 'Ann', 'annie'), ('a@x', 'Bob', NULL), ('c@x', 'Cy', NULL);
INSERT INTO archive (note) VALUES ('old'), ('older');
INSERT INTO customers (name) VALUES ('acme');
INSERT INTO invoices (customer_id, total) VALUES (1, 10), (1, 20);
INSERT INTO products (title) VALUES ('pen');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120) INSERT INTO big (v) SELECT i FROM n;
"""

PROBLEMS = {
    "002_drop_archive.sql": (
        "SL101",
        """\
-- migrate:up
DROP TABLE archive;
-- migrate:down
CREATE TABLE archive (id INTEGER PRIMARY KEY, note TEXT);
""",
    ),
    "003_drop_nickname.sql": (
        "SL102",
        """\
-- migrate:up
ALTER TABLE users DROP COLUMN nickname;
-- migrate:down
ALTER TABLE users ADD COLUMN nickname TEXT;
""",
    ),
    "004_rebuild_customers.sql": (
        "SL301",
        """\
-- migrate:up
CREATE TABLE new_customers (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO new_customers (id, name) SELECT id, name FROM customers;
DROP TABLE customers;
ALTER TABLE new_customers RENAME TO customers;
-- migrate:down
CREATE TABLE new_customers (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO new_customers (id, name) SELECT id, name FROM customers;
DROP TABLE customers;
ALTER TABLE new_customers RENAME TO customers;
""",
    ),
    "005_legacy_rename.sql": (
        "SL303",
        """\
-- migrate:up
PRAGMA legacy_alter_table = ON;
CREATE TABLE t005 (x INTEGER);
-- migrate:down
DROP TABLE t005;
""",
    ),
    "006_no_down.sql": (
        "SL401",
        """\
-- migrate:up
CREATE TABLE t006 (x INTEGER);
""",
    ),
    "007_bad_down.sql": (
        "SL402",
        """\
-- migrate:up
CREATE INDEX users_name ON users (name);
-- migrate:down
DROP INDEX users_name;
CREATE TABLE leftover (x INTEGER);
""",
    ),
    "008_fk_pragma.sql": (
        "SL503",
        """\
-- migrate:up
PRAGMA foreign_keys = OFF;
CREATE TABLE t008 (x INTEGER);
-- migrate:down
DROP TABLE t008;
""",
    ),
    "009_stamp.sql": (
        "SL601",
        """\
-- migrate:up
CREATE TABLE t009 (user_id INTEGER, seen TEXT);
INSERT INTO t009 (user_id, seen) SELECT id, CURRENT_TIMESTAMP FROM users;
-- migrate:down
DROP TABLE t009;
""",
    ),
    "010_touch_big.sql": (
        "SL701",
        """\
-- migrate:up
UPDATE big SET v = v + 1;
-- migrate:down
UPDATE big SET v = v - 1;
""",
    ),
    "011_unique_email.sql": (
        "SL201",
        """\
-- migrate:up
CREATE UNIQUE INDEX users_email ON users (email);
-- migrate:down
DROP INDEX users_email;
""",
    ),
    "012_status.sql": (
        "SL202",
        """\
-- migrate:up
ALTER TABLE users ADD COLUMN status TEXT NOT NULL;
-- migrate:down
ALTER TABLE users DROP COLUMN status;
""",
    ),
    "013_rebuild_products.sql": (
        "SL302",
        """\
-- migrate:up foreign_keys:false
CREATE TABLE new_products (id INTEGER PRIMARY KEY, title TEXT, price INTEGER);
INSERT INTO new_products (id, title) SELECT id, title FROM products;
DROP TABLE products;
ALTER TABLE new_products RENAME TO products;
-- migrate:down
ALTER TABLE products DROP COLUMN price;
""",
    ),
    "014_commit.sql": (
        "SL501",
        """\
-- migrate:up
CREATE TABLE t014 (x INTEGER);
COMMIT;
-- migrate:down
DROP TABLE t014;
""",
    ),
    "015_vacuum.sql": (
        "SL502",
        """\
-- migrate:up
VACUUM;
-- migrate:down
SELECT 1;
""",
    ),
    "016_typo.sql": (
        "SL001",
        """\
-- migrate:up
INSERT INTO nowhere (x) VALUES (1);
-- migrate:down
SELECT 1;
""",
    ),
    "017_python_commit.py": (
        "SL501",
        '''\
"""A Python step that commits by itself."""


def up(conn):
    conn.execute("CREATE TABLE t017 (x INTEGER)")
    conn.commit()


down = "DROP TABLE t017"
''',
    ),
}

CLEAN = {
    **BASE,
    "002_add_email_index.sql": """\
-- migrate:up
CREATE INDEX users_by_email ON users (email);
-- migrate:down
DROP INDEX users_by_email;
""",
    "003_add_column.py": '''\
"""Add a nullable column."""

up = "ALTER TABLE users ADD COLUMN phone TEXT"
down = "ALTER TABLE users DROP COLUMN phone"
verify = ["SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'phone'"]
''',
}

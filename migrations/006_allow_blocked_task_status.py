"""Allow the task status 'blocked' (rebuilds the tasks table).

Impact: SQLite cannot change a CHECK constraint in place, so this rebuilds tasks (the
12-step procedure of sqlite.org/lang_altertable.html): every row is copied into a new
table once, and the write lock is held for the whole copy (seconds per million tasks;
the database grows by the size of tasks until the old pages are reused). Rows, rowids,
comments, tags and watchers are unchanged. The indexes, trigger and view on tasks are
recreated with the same definitions. Runs with foreign keys off: with them on, DROP
TABLE tasks would delete every comment, tag link and watcher through ON DELETE CASCADE.

The down rebuilds tasks with the previous CHECK and refuses, changing nothing, while
any task is 'blocked': decide what those tasks should become and update them first.
"""

import sqlite3

foreign_keys = False

_COLUMNS = (
    "id, project_id, title, description, status, priority,"
    " reporter_id, assignee_id, due_on, created_at, updated_at"
)

_CREATE_NEW_TASKS = """CREATE TABLE new_tasks (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title TEXT NOT NULL CHECK (length(trim(title)) > 0),
    description TEXT,
    status TEXT NOT NULL DEFAULT 'todo'
        CHECK (status IN ('todo', 'doing', 'blocked', 'done')),
    priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    due_on TEXT CHECK (due_on IS NULL OR date(due_on) IS due_on),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)"""

# The definition of tasks before this migration, as 001 created it and 005 renamed a
# column in it. The down must restore it exactly: the verified downgrade compares it.
_CREATE_PREVIOUS_TASKS = """CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title TEXT NOT NULL CHECK (length(trim(title)) > 0),
    description TEXT,
    status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
    priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    due_on TEXT CHECK (due_on IS NULL OR date(due_on) IS due_on),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)"""

# Everything that depends on tasks, as it stands before this migration (003, 004, and
# 005's rename). DROP TABLE removes the indexes and triggers; the view must be dropped by
# hand first, because renaming a table fails while a view refers to a missing table.
_DEPENDENTS = [
    "CREATE INDEX idx_tasks_project_status ON tasks (project_id, status)",
    "CREATE INDEX idx_tasks_assignee ON tasks (assignee_id, status) WHERE assignee_id IS NOT NULL",
    """CREATE TRIGGER trg_tasks_touch_updated_at
AFTER UPDATE OF project_id, title, description, status, priority, assignee_id, due_on ON tasks
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE tasks SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = NEW.id;
END""",
    """CREATE VIEW v_open_tasks AS
SELECT t.id, p.key AS project_key, t.title, t.status, t.priority,
       u.display_name AS assignee, t.due_on
FROM tasks AS t
JOIN projects AS p ON p.id = t.project_id
LEFT JOIN users AS u ON u.id = t.assignee_id
WHERE t.status <> 'done'""",
]


def _require_foreign_keys_off(conn: sqlite3.Connection) -> None:
    """Refuse to run with foreign keys on, where DROP TABLE tasks would cascade."""
    if conn.execute("PRAGMA foreign_keys").fetchone()[0]:
        msg = "006 must run with foreign keys off (foreign_keys = False): refusing to drop tasks"
        raise RuntimeError(msg)


def up(conn: sqlite3.Connection) -> None:
    """Rebuild tasks with 'blocked' allowed: create, copy, drop, rename, recreate."""
    _require_foreign_keys_off(conn)
    conn.execute("DROP VIEW v_open_tasks")
    conn.execute(_CREATE_NEW_TASKS)
    conn.execute(f"INSERT INTO new_tasks ({_COLUMNS}) SELECT {_COLUMNS} FROM tasks")
    conn.execute("DROP TABLE tasks")
    conn.execute("ALTER TABLE new_tasks RENAME TO tasks")
    for statement in _DEPENDENTS:
        conn.execute(statement)


def down(conn: sqlite3.Connection) -> None:
    """Rebuild tasks with the previous CHECK; refuse while any task is 'blocked'.

    Renaming a table stores its name quoted (CREATE TABLE "tasks"), which would not
    restore the previous definition exactly. So the rows are parked in a TEMP table
    instead, and tasks is recreated under its own name with its previous text.
    """
    _require_foreign_keys_off(conn)
    blocked = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'blocked'").fetchone()[0]
    if blocked:
        msg = (
            f"cannot revert 006: {blocked} task(s) have status 'blocked', which the previous"
            " schema does not allow; set them to 'todo' or 'doing' first"
        )
        raise RuntimeError(msg)
    conn.execute("DROP VIEW v_open_tasks")
    conn.execute(f"CREATE TEMP TABLE tasks_before_006_down AS SELECT {_COLUMNS} FROM tasks")
    conn.execute("DROP TABLE tasks")
    conn.execute(_CREATE_PREVIOUS_TASKS)
    conn.execute(
        f"INSERT INTO tasks ({_COLUMNS}) SELECT {_COLUMNS} FROM temp.tasks_before_006_down"
    )
    conn.execute("DROP TABLE temp.tasks_before_006_down")
    for statement in _DEPENDENTS:
        conn.execute(statement)


verify = [
    """
    SELECT sql LIKE '%''blocked''%' FROM sqlite_master
    WHERE type = 'table' AND name = 'tasks'
    """,
    """
    SELECT COUNT(*) = 2 FROM pragma_index_list('tasks')
    WHERE name IN ('idx_tasks_project_status', 'idx_tasks_assignee')
    """,
    """
    SELECT COUNT(*) = 2 FROM sqlite_master
    WHERE (type, name) IN (VALUES ('trigger', 'trg_tasks_touch_updated_at'),
                                  ('view', 'v_open_tasks'))
    """,
    "SELECT COUNT(*) = 0 FROM sqlite_master WHERE name = 'new_tasks'",
    "SELECT quick_check = 'ok' FROM pragma_quick_check",
]

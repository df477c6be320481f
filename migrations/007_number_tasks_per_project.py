"""Number tasks within their project (WEB-1, WEB-2, ...) in a new column tasks.number.

Impact: adds the nullable column tasks.number (instantaneous), then backfills it for
every existing task: numbers 1, 2, 3 ... per project in id order, written by batched
UPDATEs of 500 rows (one pass over tasks; the write lock is held until the step
commits). updated_at is not touched: the column is not in the UPDATE OF list of
trg_tasks_touch_updated_at. Adds the unique index idx_tasks_project_number and the
trigger trg_tasks_number, which numbers tasks inserted without a number. The
application must give a task moved to another project a new number: the unique index
refuses a clash.

The down drops the trigger, the index and the column: the numbers are lost, but they
are derived from ids, so re-applying gives every task the same number again unless
tasks were deleted in between (then later numbers of that project close the gap).
"""

import sqlite3

BATCH_SIZE = 500

_CREATE_INDEX = "CREATE UNIQUE INDEX idx_tasks_project_number ON tasks (project_id, number)"

_CREATE_TRIGGER = """CREATE TRIGGER trg_tasks_number
AFTER INSERT ON tasks
FOR EACH ROW WHEN NEW.number IS NULL
BEGIN
    UPDATE tasks
    SET number = (SELECT COALESCE(MAX(number), 0) + 1 FROM tasks WHERE project_id = NEW.project_id)
    WHERE id = NEW.id;
END"""


def up(conn: sqlite3.Connection) -> None:
    """Add tasks.number and fill it, batch by batch, in id order within each project."""
    conn.execute("ALTER TABLE tasks ADD COLUMN number INTEGER CHECK (number > 0)")
    # Keyset pagination over the rowid: each batch is one small query, memory stays
    # bounded by the number of projects, and the order (hence the result) is fixed.
    next_number: dict[int, int] = {}
    last_id = 0
    while True:
        rows = conn.execute(
            "SELECT id, project_id FROM tasks WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, BATCH_SIZE),
        ).fetchall()
        if not rows:
            break
        updates = []
        for task_id, project_id in rows:
            next_number[project_id] = next_number.get(project_id, 0) + 1
            updates.append((next_number[project_id], task_id))
        conn.executemany("UPDATE tasks SET number = ? WHERE id = ?", updates)
        last_id = rows[-1][0]
    conn.execute(_CREATE_INDEX)
    conn.execute(_CREATE_TRIGGER)


# DROP COLUMN refuses while an index or a trigger uses the column: drop those first.
down = """
DROP TRIGGER trg_tasks_number;
DROP INDEX idx_tasks_project_number;
ALTER TABLE tasks DROP COLUMN number;
"""

verify = [
    "SELECT COUNT(*) = 0 FROM tasks WHERE number IS NULL",
    # With the unique index, MAX = COUNT means each project is numbered 1..n.
    """
    SELECT NOT EXISTS (
        SELECT 1 FROM tasks GROUP BY project_id HAVING MAX(number) <> COUNT(*)
    )
    """,
    """
    SELECT COUNT(*) = 1 FROM pragma_index_list('tasks')
    WHERE name = 'idx_tasks_project_number' AND "unique" = 1
    """,
    "SELECT COUNT(*) = 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'trg_tasks_number'",
]

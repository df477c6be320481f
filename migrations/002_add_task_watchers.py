"""Add task watchers: users who are notified of changes to a task.

Impact: creates table task_watchers (foreign keys to tasks and users, both ON DELETE
CASCADE) with an index on user_id, and fills it from existing tasks: each task's reporter
and assignee watch it, with added_at = the task's created_at. One INSERT ... SELECT reads
every task once; existing rows are not modified. The down drops the table, and with it
the watchers users have added since.
"""

up = """
CREATE TABLE task_watchers (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at TEXT NOT NULL,
    PRIMARY KEY (task_id, user_id)
) WITHOUT ROWID;

-- The primary key serves lookups by task; this index serves "what do I watch" and the
-- ON DELETE CASCADE from users, which would otherwise scan the whole table.
CREATE INDEX idx_task_watchers_user ON task_watchers (user_id);

INSERT INTO task_watchers (task_id, user_id, added_at)
SELECT id, reporter_id, created_at FROM tasks
UNION
SELECT id, assignee_id, created_at FROM tasks WHERE assignee_id IS NOT NULL;
"""

down = """
DROP TABLE task_watchers;
"""

verify = [
    "SELECT COUNT(*) = 2 FROM pragma_foreign_key_list('task_watchers')",
    """
    SELECT COUNT(*) = 1 FROM pragma_index_list('task_watchers')
    WHERE name = 'idx_task_watchers_user'
    """,
    # Every reporter and every assignee watches their task.
    """
    SELECT NOT EXISTS (
        SELECT 1 FROM tasks AS t
        WHERE NOT EXISTS (
            SELECT 1 FROM task_watchers AS w WHERE w.task_id = t.id AND w.user_id = t.reporter_id
        )
        OR (
            t.assignee_id IS NOT NULL
            AND NOT EXISTS (
                SELECT 1 FROM task_watchers AS w
                WHERE w.task_id = t.id AND w.user_id = t.assignee_id
            )
        )
    )
    """,
]

"""Rename tasks.due_date to tasks.due_on (calendar dates are named *_on, instants *_at).

Impact: renames one column; no row is read or rewritten, so it is instantaneous at any
table size. SQLite rewrites every reference to the column in the schema: the column's
own CHECK constraint, the column list of trigger trg_tasks_touch_updated_at and view
v_open_tasks, whose due_date column is now called due_on. Application queries that
name due_date, in tasks or in the view, must change in the same release. The down
renames it back.
"""

up = "ALTER TABLE tasks RENAME COLUMN due_date TO due_on;"

down = "ALTER TABLE tasks RENAME COLUMN due_on TO due_date;"

verify = [
    "SELECT COUNT(*) = 1 FROM pragma_table_info('tasks') WHERE name = 'due_on'",
    "SELECT COUNT(*) = 0 FROM pragma_table_info('tasks') WHERE name = 'due_date'",
    "SELECT COUNT(*) = 1 FROM pragma_table_info('v_open_tasks') WHERE name = 'due_on'",
    """
    SELECT sql LIKE '%due_on%' AND sql NOT LIKE '%due_date%' FROM sqlite_master
    WHERE type = 'trigger' AND name = 'trg_tasks_touch_updated_at'
    """,
]

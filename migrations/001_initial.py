"""Create the task tracker's base schema: users, projects, tasks, comments and tags.

Impact: creates six empty tables and their indexes on an empty database; no existing
data is touched and the step takes milliseconds. The down drops every table of the
application and therefore ALL of its data: only run it on a database you mean to empty.
"""

up = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
    display_name TEXT NOT NULL CHECK (length(trim(display_name)) > 0),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at TEXT NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE CHECK (
        length(key) BETWEEN 2 AND 10 AND key GLOB '[A-Z]*' AND key NOT GLOB '*[^A-Z0-9]*'
    ),
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    owner_id INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title TEXT NOT NULL CHECK (length(trim(title)) > 0),
    description TEXT,
    status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
    priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    due_date TEXT CHECK (due_date IS NULL OR date(due_date) IS due_date),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX idx_tasks_project_status ON tasks (project_id, status);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT NOT NULL CHECK (length(trim(body)) > 0),
    created_at TEXT NOT NULL
);

CREATE INDEX idx_comments_task ON comments (task_id, created_at);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(name) BETWEEN 1 AND 32)
);

CREATE TABLE task_tags (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
) WITHOUT ROWID;

CREATE INDEX idx_task_tags_tag ON task_tags (tag_id);
"""

# Children before parents, so that no drop has to look for referencing rows elsewhere.
down = """
DROP TABLE task_tags;
DROP TABLE tags;
DROP TABLE comments;
DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE users;
"""

verify = [
    """
    SELECT COUNT(*) = 6 FROM sqlite_master
    WHERE type = 'table'
      AND name IN ('users', 'projects', 'tasks', 'comments', 'tags', 'task_tags')
    """,
    """
    SELECT COUNT(*) = 3 FROM sqlite_master
    WHERE type = 'index'
      AND name IN ('idx_tasks_project_status', 'idx_comments_task', 'idx_task_tags_tag')
    """,
    "SELECT COUNT(*) = 3 FROM pragma_foreign_key_list('tasks')",
]

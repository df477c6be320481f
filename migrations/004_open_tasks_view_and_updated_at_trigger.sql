-- Keep tasks.updated_at current and add the v_open_tasks view.
--
-- Impact: creates trigger trg_tasks_touch_updated_at, which sets updated_at to the
-- current UTC time after an UPDATE that changes a task's content but not updated_at
-- itself, and view v_open_tasks (every task not 'done', with its project key and
-- assignee name). Schema only: no existing row is read or modified; instantaneous.
-- The down drops both; updated_at values written by the trigger stay as they are.

-- migrate:up
-- Listing columns in UPDATE OF keeps bulk writes to other columns (backfills, counters)
-- from bumping updated_at. The trigger's own UPDATE does not fire it again: updated_at
-- is not in the list.
CREATE TRIGGER trg_tasks_touch_updated_at
AFTER UPDATE OF project_id, title, description, status, priority, assignee_id, due_date ON tasks
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE tasks SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = NEW.id;
END;

CREATE VIEW v_open_tasks AS
SELECT t.id, p.key AS project_key, t.title, t.status, t.priority,
       u.display_name AS assignee, t.due_date
FROM tasks AS t
JOIN projects AS p ON p.id = t.project_id
LEFT JOIN users AS u ON u.id = t.assignee_id
WHERE t.status <> 'done';

-- migrate:down
DROP VIEW v_open_tasks;
DROP TRIGGER trg_tasks_touch_updated_at;

-- migrate:verify
SELECT COUNT(*) = 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'trg_tasks_touch_updated_at';
SELECT (SELECT COUNT(*) FROM v_open_tasks) = (SELECT COUNT(*) FROM tasks WHERE status <> 'done');

-- Show each open task's key (e.g. WEB-12) in v_open_tasks.
--
-- Impact: replaces view v_open_tasks with one that has a task_key column, after id,
-- built from the project key and tasks.number (added by 007). Schema only: no row is
-- read or modified; instantaneous. Queries that select columns by position shift by
-- one. The down restores the previous view exactly.

-- migrate:up
DROP VIEW v_open_tasks;
CREATE VIEW v_open_tasks AS
SELECT t.id, p.key || '-' || t.number AS task_key, p.key AS project_key, t.title,
       t.status, t.priority, u.display_name AS assignee, t.due_on
FROM tasks AS t
JOIN projects AS p ON p.id = t.project_id
LEFT JOIN users AS u ON u.id = t.assignee_id
WHERE t.status <> 'done';

-- migrate:down
DROP VIEW v_open_tasks;
CREATE VIEW v_open_tasks AS
SELECT t.id, p.key AS project_key, t.title, t.status, t.priority,
       u.display_name AS assignee, t.due_on
FROM tasks AS t
JOIN projects AS p ON p.id = t.project_id
LEFT JOIN users AS u ON u.id = t.assignee_id
WHERE t.status <> 'done';

-- migrate:verify
SELECT COUNT(*) = 1 FROM pragma_table_info('v_open_tasks') WHERE name = 'task_key' AND cid = 1;
SELECT COUNT(*) = 0 FROM v_open_tasks WHERE task_key IS NULL;
SELECT (SELECT COUNT(*) FROM v_open_tasks) = (SELECT COUNT(*) FROM tasks WHERE status <> 'done');

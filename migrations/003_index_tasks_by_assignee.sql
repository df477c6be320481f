-- Index tasks by assignee, for the "my tasks" screen.
--
-- Impact: builds one partial index over the tasks that have an assignee; reads the
-- whole tasks table once while holding the write lock (about a second per million
-- rows). No row is modified. The down drops the index.

-- migrate:up
CREATE INDEX idx_tasks_assignee ON tasks (assignee_id, status) WHERE assignee_id IS NOT NULL;

-- migrate:down
DROP INDEX idx_tasks_assignee;

-- migrate:verify
SELECT COUNT(*) = 1 FROM pragma_index_list('tasks') WHERE name = 'idx_tasks_assignee' AND partial = 1;
SELECT group_concat(name, ',') = 'assignee_id,status' FROM (SELECT name FROM pragma_index_info('idx_tasks_assignee') ORDER BY seqno);

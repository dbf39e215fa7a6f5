-- The statements the SQLite store runs on its tables, one named block each
-- (store/sql.py binds every block to a constant of the same name, upper-cased).
-- "{marks}" stands for as many "?" as the list it matches has items.
-- Columns of a record are listed in its field order: rows convert to records
-- by position.

-- executions

-- name: insert_execution
INSERT INTO executions (
    run_id, namespace, workflow_id, workflow_type, task_queue, status, start_time,
    close_time, next_event_id, history_size, version, activity_owner
) VALUES (?,?,?,?,?,?,?,?,?,?,?,?);

-- name: update_execution
UPDATE executions SET status=?, close_time=?, next_event_id=?, history_size=?,
    version=?, activity_owner=?
WHERE run_id=?;

-- name: get_execution
SELECT run_id, namespace, workflow_id, workflow_type, task_queue, status, start_time,
    close_time, next_event_id, history_size, version, activity_owner
FROM executions WHERE run_id=?;

-- name: execution_version
SELECT version FROM executions WHERE run_id=?;

-- name: count_running
SELECT count(*) FROM executions WHERE status=1 AND task_queue=? AND namespace=?;

-- name: run_ids
SELECT run_id FROM executions ORDER BY start_time;

-- name: current_run_id
SELECT run_id FROM current_runs WHERE namespace=? AND workflow_id=?;

-- name: set_current_run
INSERT INTO current_runs (namespace, workflow_id, run_id) VALUES (?,?,?)
ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id=excluded.run_id;

-- history

-- name: insert_chunk
INSERT INTO history (run_id, first_event_id, last_event_id, data) VALUES (?,?,?,?);

-- name: read_history
-- From the chunk that holds event ?2 on.
SELECT first_event_id, last_event_id, data FROM history
WHERE run_id=?1 AND first_event_id >= (
    SELECT coalesce(max(first_event_id), 1) FROM history
    WHERE run_id=?1 AND first_event_id <= ?2
)
ORDER BY first_event_id;

-- name: insert_buffered_event
INSERT INTO buffered_events (run_id, data) VALUES (?,?);

-- name: buffered_events
SELECT data FROM buffered_events WHERE run_id=? ORDER BY id;

-- name: delete_buffered_events
DELETE FROM buffered_events WHERE run_id=?;

-- name: count_buffered_events
SELECT count(*) FROM buffered_events WHERE run_id=?;

-- tasks

-- name: insert_task
INSERT INTO tasks (
    id, kind, run_id, namespace, task_queue, ref, attempt, visible_at, lease_owner,
    lease_until, lease_nonce, started_at, scheduled_at, attempt_scheduled_at,
    cancel_requested, heartbeat_at, heartbeat_details, last_failure
) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);

-- name: update_task
-- Every column but the id, in insert_task's order, then the id.
UPDATE tasks SET kind=?, run_id=?, namespace=?, task_queue=?, ref=?, attempt=?,
    visible_at=?, lease_owner=?, lease_until=?, lease_nonce=?, started_at=?,
    scheduled_at=?, attempt_scheduled_at=?, cancel_requested=?, heartbeat_at=?,
    heartbeat_details=?, last_failure=?
WHERE id=?;

-- name: delete_task
DELETE FROM tasks WHERE id=?;

-- name: delete_run_tasks
DELETE FROM tasks WHERE run_id=?;

-- name: tasks_of_run
SELECT id, kind, run_id, namespace, task_queue, ref, attempt, visible_at, lease_owner,
    lease_until, lease_nonce, started_at, scheduled_at, attempt_scheduled_at,
    cancel_requested, heartbeat_at, heartbeat_details, last_failure
FROM tasks WHERE run_id=? ORDER BY id;

-- name: ready_tasks
SELECT id, kind, run_id, namespace, task_queue, ref, attempt, visible_at, lease_owner,
    lease_until, lease_nonce, started_at, scheduled_at, attempt_scheduled_at,
    cancel_requested, heartbeat_at, heartbeat_details, last_failure
FROM tasks
WHERE kind=? AND task_queue IN ({marks}) AND visible_at<=?
    AND (lease_owner IS NULL OR lease_until<?)
ORDER BY visible_at LIMIT ?;

-- name: runnable_task
-- Any task leased (running) or due.
SELECT 1 FROM tasks WHERE lease_owner IS NOT NULL OR visible_at<=? LIMIT 1;

-- name: retrying_workflow_task
-- Any workflow task waiting out its backoff after failed attempts (kind 0).
SELECT 1 FROM tasks WHERE kind=0 AND attempt>1 LIMIT 1;

-- name: last_task_id
-- Ids are never reused: the next is past the largest ever given.
SELECT seq FROM sqlite_sequence WHERE name='tasks';

-- name: touch_leased_runs
-- Cached run states of every process notice a freed lease by the version.
UPDATE executions SET version=version+1
WHERE run_id IN (SELECT run_id FROM tasks WHERE kind=? AND lease_owner IN ({marks}));

-- name: touch_leased_runs_of_queue
UPDATE executions SET version=version+1
WHERE run_id IN (
    SELECT run_id FROM tasks WHERE kind=? AND lease_owner IN ({marks}) AND task_queue=?
);

-- name: release_leases
UPDATE tasks SET lease_owner=NULL, lease_until=NULL
WHERE kind=? AND lease_owner IN ({marks});

-- name: release_leases_of_queue
UPDATE tasks SET lease_owner=NULL, lease_until=NULL
WHERE kind=? AND lease_owner IN ({marks}) AND task_queue=?;

-- name: runs_with_leased_tasks
SELECT DISTINCT run_id FROM tasks WHERE kind=? AND lease_owner IN ({marks});

-- name: runs_with_leased_activities
-- Also the runs whose attempts may have no task row yet.
SELECT run_id FROM tasks WHERE kind=? AND lease_owner IN ({marks})
UNION SELECT run_id FROM executions WHERE activity_owner IN ({marks});

-- timers

-- name: insert_timer
INSERT INTO timers (run_id, kind, ref, attempt, fire_at) VALUES (?,?,?,?,?);

-- name: delete_timer
DELETE FROM timers WHERE id=?;

-- name: delete_run_timers
DELETE FROM timers WHERE run_id=?;

-- name: delete_run_timers_of_kind
DELETE FROM timers WHERE run_id=? AND kind=?;

-- name: delete_run_timers_of_ref
DELETE FROM timers WHERE run_id=? AND ref=?;

-- name: delete_run_timers_of_kind_and_ref
DELETE FROM timers WHERE run_id=? AND kind=? AND ref=?;

-- name: delete_ref_timers
DELETE FROM timers WHERE run_id=? AND ref=? AND kind IN ({marks});

-- name: due_timers
SELECT id, run_id, kind, ref, attempt, fire_at FROM timers
WHERE fire_at<=? ORDER BY fire_at, id LIMIT ?;

-- name: next_timer_at
SELECT min(fire_at) FROM timers;

-- owners

-- name: register_owner
-- task_queues: the names, one a line.
INSERT OR REPLACE INTO owners (owner_id, pid, started_at, task_queues, lease_until, host)
VALUES (?,?,?,?,?,?);

-- name: renew_owner
-- Only while the row holds the lease that was read.
UPDATE owners SET lease_until=? WHERE owner_id=? AND lease_until=?;

-- name: remove_owner
DELETE FROM owners WHERE owner_id=?;

-- name: expire_owner
-- Only if the lease had ended (not renewed meanwhile).
DELETE FROM owners WHERE owner_id=? AND lease_until<?;

-- name: owners
SELECT owner_id, pid, started_at, task_queues, lease_until, host FROM owners;

-- updates

-- name: insert_update
INSERT INTO updates (run_id, update_id, seq, request, state, outcome, accepted_event_id)
VALUES (?,?,?,?,?,?,?);

-- name: save_update
UPDATE updates SET state=?, outcome=?, accepted_event_id=? WHERE run_id=? AND update_id=?;

-- name: get_update
SELECT run_id, update_id, seq, request, state, outcome, accepted_event_id
FROM updates WHERE run_id=? AND update_id=?;

-- name: updates_of_run
SELECT run_id, update_id, seq, request, state, outcome, accepted_event_id
FROM updates WHERE run_id=? ORDER BY seq;

-- cross-process queries

-- name: insert_query
INSERT INTO queries (run_id, task_queue, request, created_at) VALUES (?,?,?,?);

-- name: open_queries
SELECT id, run_id, task_queue, request, taken_by, answered, response, error
FROM queries WHERE answered=0 AND taken_by IS NULL AND task_queue IN ({marks});

-- name: take_query
UPDATE queries SET taken_by=? WHERE id=?;

-- name: answer_query
UPDATE queries SET answered=1, response=?, error=? WHERE id=?;

-- name: get_query
SELECT id, run_id, task_queue, request, taken_by, answered, response, error
FROM queries WHERE id=?;

-- name: delete_query
DELETE FROM queries WHERE id=?;

-- schedules

-- name: insert_schedule
INSERT INTO schedules (
    namespace, schedule_id, schedule, info, memo, search_attributes, state, created_at
) VALUES (?,?,?,?,?,?,?,?);

-- name: get_schedule
SELECT namespace, schedule_id, schedule, info, memo, search_attributes, state, created_at
FROM schedules WHERE namespace=? AND schedule_id=?;

-- name: update_schedule
UPDATE schedules SET schedule=?, info=?, memo=?, search_attributes=?, state=?
WHERE namespace=? AND schedule_id=?;

-- name: delete_schedule
DELETE FROM schedules WHERE namespace=? AND schedule_id=?;

-- name: list_schedules
-- Newest first, as Temporal's visibility lists them.
SELECT namespace, schedule_id, schedule, info, memo, search_attributes, state, created_at
FROM schedules WHERE namespace=?
ORDER BY created_at DESC, schedule_id LIMIT ? OFFSET ?;

-- search attributes

-- name: search_attributes
SELECT name, type FROM search_attributes WHERE namespace=? ORDER BY name;

-- name: add_search_attribute
-- A name already registered keeps its type, as on Temporal.
INSERT OR IGNORE INTO search_attributes (namespace, name, type) VALUES (?, ?, ?);

-- name: remove_search_attribute
DELETE FROM search_attributes WHERE namespace=? AND name=?;

-- the file

-- name: all_tables
SELECT name FROM sqlite_master WHERE type='table';

-- name: tables
-- With their definitions, SQLite's own left out.
SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%';

-- name: get_meta
SELECT value FROM meta WHERE key=?;

-- name: insert_meta
INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?);

-- name: first_row
-- Of a table WITHOUT ROWID, for the quick check.
SELECT * FROM {table} LIMIT 1;

-- name: rowid_range
SELECT min(rowid), max(rowid) FROM {table};

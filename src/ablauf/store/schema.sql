-- ablauf store schema, version 5 (SCHEMA_VERSION in sqlite.py).
-- Histories are Temporal HistoryEvent protos; everything else is the engine's
-- bookkeeping (the "mutable state" of Temporal's history service).

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS executions (
    run_id        TEXT PRIMARY KEY,
    namespace     TEXT NOT NULL,
    workflow_id   TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    task_queue    TEXT NOT NULL,
    status        INTEGER NOT NULL,
    start_time    REAL NOT NULL,
    close_time    REAL,
    next_event_id INTEGER NOT NULL,
    history_size  INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    activity_owner TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_id ON executions (namespace, workflow_id, start_time);
-- The few runs whose running attempts have no task row, for recovery.
CREATE INDEX IF NOT EXISTS executions_by_activity_owner ON executions (activity_owner)
    WHERE activity_owner IS NOT NULL;

CREATE TABLE IF NOT EXISTS current_runs (
    namespace   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (namespace, workflow_id)
) WITHOUT ROWID;

-- A run's history in chunks: the events one transition appended, serialized
-- as one History message (the frames of consecutive chunks concatenate).
-- Kept in commit order: a commit that changed many runs appends to one end of
-- the table, and only the small index entries go where each run's are.
CREATE TABLE IF NOT EXISTS history (
    id             INTEGER PRIMARY KEY,
    run_id         TEXT NOT NULL,
    first_event_id INTEGER NOT NULL,
    last_event_id  INTEGER NOT NULL,
    data           BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS history_by_run ON history (run_id, first_event_id);

-- Events that arrived while a workflow task was running; they enter the
-- history after that task's commands, as in Temporal.
CREATE TABLE IF NOT EXISTS buffered_events (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    data   BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS buffered_by_run ON buffered_events (run_id);

-- kind 0: workflow task (at most one per run), kind 1: activity (one per
-- pending activity, kept across its retries). Ids of tasks, timers and
-- queries are never reused (AUTOINCREMENT): a process that acts on a row it
-- read earlier names it by id, and must never hit a newer row by that id.
CREATE TABLE IF NOT EXISTS tasks (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              INTEGER NOT NULL,
    run_id            TEXT NOT NULL,
    namespace         TEXT NOT NULL,
    task_queue        TEXT NOT NULL,
    ref               INTEGER NOT NULL,
    attempt           INTEGER NOT NULL,
    visible_at        REAL NOT NULL,
    lease_owner       TEXT,
    lease_until       REAL,
    lease_nonce       INTEGER NOT NULL DEFAULT 0,
    started_at        REAL,
    scheduled_at      REAL NOT NULL,
    attempt_scheduled_at REAL NOT NULL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    heartbeat_at      REAL,
    heartbeat_details BLOB,
    last_failure      BLOB
);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (kind, task_queue, visible_at);
CREATE INDEX IF NOT EXISTS tasks_by_run ON tasks (run_id);

-- kinds: see ablauf.engine.timers.TimerKind
CREATE TABLE IF NOT EXISTS timers (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL,
    kind    INTEGER NOT NULL,
    ref     TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    fire_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (fire_at);
CREATE INDEX IF NOT EXISTS timers_by_run ON timers (run_id, kind, ref);

-- Processes that host workers, each with a lease it renews (wall-clock
-- seconds). Once lease_until has passed, any other process may declare the
-- owner gone: its workflow task leases are freed and its activity attempts
-- time out from durable timers. pid and host are for people, never compared.
CREATE TABLE IF NOT EXISTS owners (
    owner_id    TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    task_queues TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0,
    host        TEXT NOT NULL DEFAULT ''
);

-- Queries handed to a worker in another process.
CREATE TABLE IF NOT EXISTS queries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    task_queue TEXT NOT NULL,
    request    BLOB NOT NULL,
    taken_by   TEXT,
    answered   INTEGER NOT NULL DEFAULT 0,
    response   BLOB,
    error      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_open ON queries (task_queue, answered);

-- Workflow updates that a client asked for; accepted ones are also events.
-- state: 0 requested, 1 accepted, 2 completed, 3 rejected
CREATE TABLE IF NOT EXISTS updates (
    run_id            TEXT NOT NULL,
    update_id         TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    request           BLOB NOT NULL,
    state             INTEGER NOT NULL,
    outcome           BLOB,
    accepted_event_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, update_id)
) WITHOUT ROWID;

-- Schedules: the spec, action, policies and state as Temporal's Schedule proto,
-- ScheduleInfo as Temporal's proto, and the engine's bookkeeping as JSON (last
-- processed time, buffered starts, conflict token). Each schedule has at most
-- one row in timers (kind SCHEDULE) for when it next has work to do.
CREATE TABLE IF NOT EXISTS schedules (
    namespace         TEXT NOT NULL,
    schedule_id       TEXT NOT NULL,
    schedule          BLOB NOT NULL,
    info              BLOB NOT NULL,
    memo              BLOB NOT NULL,
    search_attributes BLOB NOT NULL,
    state             TEXT NOT NULL,
    created_at        REAL NOT NULL,
    PRIMARY KEY (namespace, schedule_id)
) WITHOUT ROWID;

-- The custom search attributes registered per namespace (Temporal's operator
-- service): type is the IndexedValueType.
CREATE TABLE IF NOT EXISTS search_attributes (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    type      INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

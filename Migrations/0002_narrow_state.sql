-- Mesh journal, schema v2: the mutable state of a message moves out of its payload row.
--
-- Why: SQLite rewrites a whole row on UPDATE. With payloads of a few KiB, every status change (acked,
-- handled, an attempt counted) rewrote a full page of payload; measured on a 2.4 KB row, 31 µs per update
-- against 0.9 µs for the same update on a narrow row. The payload rows (mesh_outbound, mesh_inbound) are now
-- written once and never updated; status, attempts, completion time and error live in narrow *_state tables,
-- one row per message, deleted with it.
--
-- The views keep every column, in the same order: the audit interface does not change.

DROP VIEW mesh_messages;
DROP VIEW mesh_invocations;
DROP INDEX mesh_outbound_pending;
DROP INDEX mesh_inbound_open;

-- status: 0 pending, 1 acked, 2 failed. command_id is copied from mesh_outbound so the pending index needs
-- no join.
CREATE TABLE mesh_outbound_state (
    seq            INTEGER PRIMARY KEY REFERENCES mesh_outbound(seq) ON DELETE CASCADE,
    command_id     INTEGER NOT NULL,
    status         INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 2),
    attempts       INTEGER NOT NULL DEFAULT 0,
    completed_at   INTEGER,
    error          TEXT
) STRICT;
INSERT INTO mesh_outbound_state(seq, command_id, status, attempts, completed_at, error)
    SELECT seq, command_id, status, attempts, completed_at, error FROM mesh_outbound;
CREATE INDEX mesh_outbound_pending ON mesh_outbound_state(command_id, seq) WHERE status = 0;
-- Resume at start: every pending row, in sequence order, without reading acked ones.
CREATE INDEX mesh_outbound_pending_seq ON mesh_outbound_state(seq) WHERE status = 0;

-- status: 0 received, 1 handled, 2 failed (will be retried), 3 dead, 4 unhandled (no handler yet).
CREATE TABLE mesh_inbound_state (
    id             INTEGER PRIMARY KEY REFERENCES mesh_inbound(id) ON DELETE CASCADE,
    command_id     INTEGER NOT NULL,
    status         INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 4),
    attempts       INTEGER NOT NULL DEFAULT 0,
    completed_at   INTEGER,
    error          TEXT
) STRICT;
INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at, error)
    SELECT id, command_id, status, attempts, completed_at, error FROM mesh_inbound;
CREATE INDEX mesh_inbound_open ON mesh_inbound_state(command_id, id) WHERE status IN (0, 2, 4);
CREATE INDEX mesh_inbound_open_id ON mesh_inbound_state(id) WHERE status IN (0, 2, 4);

ALTER TABLE mesh_outbound DROP COLUMN status;
ALTER TABLE mesh_outbound DROP COLUMN attempts;
ALTER TABLE mesh_outbound DROP COLUMN completed_at;
ALTER TABLE mesh_outbound DROP COLUMN error;
ALTER TABLE mesh_inbound DROP COLUMN status;
ALTER TABLE mesh_inbound DROP COLUMN attempts;
ALTER TABLE mesh_inbound DROP COLUMN completed_at;
ALTER TABLE mesh_inbound DROP COLUMN error;

-- Retention deletes finished outbound rows and handled inbound rows by age (dead ones stay until re-queued
-- or pruned explicitly); these find them without touching open ones.
CREATE INDEX mesh_outbound_state_done ON mesh_outbound_state(completed_at) WHERE status <> 0;
CREATE INDEX mesh_inbound_state_done ON mesh_inbound_state(completed_at) WHERE status = 1;

-- SendMany relay trees: the branch a message's receiver forwards it to, as "limit;addr,addr,...".
ALTER TABLE mesh_outbound ADD COLUMN relay TEXT;
ALTER TABLE mesh_inbound ADD COLUMN relay TEXT;

-- The audit interface: one row per journaled message, both directions (the v1 columns, then relay).
CREATE VIEW mesh_messages AS
SELECT
    o.seq AS id,
    'out' AS direction,
    (SELECT node_id FROM mesh_node) || ':' || o.seq AS message_id,
    o.command_id,
    CASE o.kind WHEN 0 THEN 'send' WHEN 1 THEN 'usend' WHEN 2 THEN 'request' ELSE 'response' END AS kind,
    o.peer,
    CASE s.status WHEN 0 THEN 'pending' WHEN 1 THEN 'acked' ELSE 'failed' END AS status,
    s.attempts,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', s.completed_at / 1000.0, 'unixepoch') AS completed_at,
    o.payload,
    o.payload_json,
    o.correlation_id,
    o.replay_of,
    s.error,
    (SELECT node_id FROM mesh_node) AS origin_node,
    o.seq AS origin_seq,
    o.created_at AS created_at_ms,
    s.completed_at AS completed_at_ms,
    o.relay
FROM mesh_outbound o JOIN mesh_outbound_state s ON s.seq = o.seq
UNION ALL
SELECT
    i.id,
    'in',
    p.node_id || ':' || i.origin_seq,
    i.command_id,
    CASE i.kind WHEN 0 THEN 'send' WHEN 1 THEN 'usend' WHEN 2 THEN 'request' ELSE 'response' END,
    i.peer,
    CASE s.status WHEN 0 THEN 'received' WHEN 1 THEN 'handled' WHEN 2 THEN 'failed' WHEN 3 THEN 'dead'
                  ELSE 'unhandled' END,
    s.attempts,
    strftime('%Y-%m-%dT%H:%M:%fZ', i.created_at / 1000.0, 'unixepoch'),
    strftime('%Y-%m-%dT%H:%M:%fZ', s.completed_at / 1000.0, 'unixepoch'),
    i.payload,
    i.payload_json,
    i.correlation_id,
    i.replay_of,
    s.error,
    p.node_id,
    i.origin_seq,
    i.created_at,
    s.completed_at,
    i.relay
FROM mesh_inbound i JOIN mesh_inbound_state s ON s.id = i.id JOIN mesh_peer p ON p.id = i.origin;

-- The audit interface: one row per handler invocation (unchanged from v1).
CREATE VIEW mesh_invocations AS
SELECT
    v.id,
    p.node_id || ':' || i.origin_seq AS message_id,
    i.command_id,
    v.handler_index,
    v.attempt,
    strftime('%Y-%m-%dT%H:%M:%fZ', v.started_at / 1000.0, 'unixepoch') AS started_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', v.finished_at / 1000.0, 'unixepoch') AS finished_at,
    CASE v.outcome WHEN 0 THEN 'ok' WHEN 1 THEN 'error' END AS outcome,
    v.error,
    v.response_json,
    v.replay_run,
    v.response,
    i.peer,
    v.started_at AS started_at_ms,
    v.finished_at AS finished_at_ms
FROM mesh_invocation v
JOIN mesh_inbound i ON i.id = v.inbound_id
JOIN mesh_peer p ON p.id = i.origin;

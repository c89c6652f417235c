-- Mesh journal, schema v9: the common invocation is kept in its message's state row.
--
-- Why: most messages run one handler once, and it returns. That invocation cost a mesh_invocation row and an
-- entry in mesh_invocation_inbound: two more B-tree leaves, two more WAL frames (whole pages) in the commit
-- that marks the message handled. It is now written into the mesh_inbound_state row that commit updates
-- anyway: its id, attempt, start and end times and response, in columns of their own so that a later change
-- of the message's status leaves them as they were (handler_index is 0, outcome ok, no replay run). Any other
-- invocation (a later handler of a chain, an error, a replay, one still running) keeps its own row.
--
-- Invocation ids come from one counter on the journal's writer for both forms, so ids stay unique and
-- increasing. mesh_node.invocation_reserved is the highest id the writer may hand out before it records a
-- higher one (it does so in the transaction that needs it, and at each open), so a restart never reuses an id.
--
-- mesh_invocation_rows is an internal view with the columns of mesh_invocation, over both forms; the public
-- view mesh_invocations keeps its columns, in the same order.

ALTER TABLE mesh_node ADD COLUMN invocation_reserved INTEGER NOT NULL DEFAULT 0;
UPDATE mesh_node SET invocation_reserved = (SELECT coalesce(max(id), 0) FROM mesh_invocation);

ALTER TABLE mesh_inbound_state ADD COLUMN invocation_id INTEGER;
ALTER TABLE mesh_inbound_state ADD COLUMN invocation_attempt INTEGER;
ALTER TABLE mesh_inbound_state ADD COLUMN invocation_started_at INTEGER;
ALTER TABLE mesh_inbound_state ADD COLUMN invocation_finished_at INTEGER;
ALTER TABLE mesh_inbound_state ADD COLUMN invocation_response BLOB;
ALTER TABLE mesh_inbound_state ADD COLUMN invocation_response_json TEXT;

CREATE VIEW mesh_invocation_rows AS
SELECT id, inbound_id, handler_index, attempt, replay_run, started_at, finished_at, outcome, error, response, response_json
FROM mesh_invocation
UNION ALL
SELECT s.invocation_id, s.id, 0, s.invocation_attempt, NULL, s.invocation_started_at, s.invocation_finished_at, 0, NULL,
       s.invocation_response, s.invocation_response_json
FROM mesh_inbound_state s
WHERE s.invocation_id IS NOT NULL;

-- The audit interface: one row per handler invocation (the v1 columns, unchanged). Written out for each form
-- rather than over mesh_invocation_rows: a compound view joined to other tables would be materialized whole.
DROP VIEW mesh_invocations;
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
JOIN mesh_peer p ON p.id = i.origin
UNION ALL
SELECT
    s.invocation_id,
    p.node_id || ':' || i.origin_seq,
    i.command_id,
    0,
    s.invocation_attempt,
    strftime('%Y-%m-%dT%H:%M:%fZ', s.invocation_started_at / 1000.0, 'unixepoch'),
    strftime('%Y-%m-%dT%H:%M:%fZ', s.invocation_finished_at / 1000.0, 'unixepoch'),
    'ok',
    NULL,
    s.invocation_response_json,
    NULL,
    s.invocation_response,
    i.peer,
    s.invocation_started_at,
    s.invocation_finished_at
FROM mesh_inbound_state s
JOIN mesh_inbound i ON i.id = s.id
JOIN mesh_peer p ON p.id = i.origin
WHERE s.invocation_id IS NOT NULL;

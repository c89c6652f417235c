-- Mesh journal, schema v1.
--
-- Base tables are private to Mesh and may change in later migrations. The views mesh_messages and
-- mesh_invocations at the end of this file are the stable, documented interface for operators: later
-- migrations may add columns to them but never rename or remove one.
--
-- Times are integer Unix milliseconds (UTC) in the tables and ISO-8601 text with milliseconds in the views.
-- Status codes are small integers in the tables and the documented words in the views.

-- The node's identity: one row. node_id is random, created once; boot_epoch is incremented at every open,
-- so peers can tell a restarted node from a late packet. last_out_seq is the highest outbound sequence ever
-- assigned; it survives pruning, so a message id is never reused.
CREATE TABLE mesh_node (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    node_id       TEXT    NOT NULL CHECK (length(node_id) = 32),
    boot_epoch    INTEGER NOT NULL CHECK (boot_epoch >= 0),
    last_out_seq  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    opened_at     INTEGER NOT NULL
) STRICT;

-- Known peers (membership), persisted so a restarted node can rejoin without seeds. Also the registry of
-- origin node ids that inbound messages refer to.
CREATE TABLE mesh_peer (
    id            INTEGER PRIMARY KEY,
    node_id       TEXT    NOT NULL UNIQUE,
    address       TEXT,
    node_type     TEXT,
    node_role     TEXT,
    status        INTEGER NOT NULL DEFAULT 0,   -- 0 unknown, 1 online, 2 offline, 3 taken
    boot_epoch    INTEGER,
    incarnation   INTEGER NOT NULL DEFAULT 0,
    node_values   BLOB,                         -- MeshCodec map
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
) STRICT;
CREATE INDEX mesh_peer_address ON mesh_peer(address);

-- Messages this node originated. seq is the origin sequence: message id = node_id || ':' || seq.
-- kind: 0 send, 1 usend, 2 request, 3 response. status: 0 pending, 1 acked, 2 failed.
CREATE TABLE mesh_outbound (
    seq            INTEGER PRIMARY KEY,
    command_id     INTEGER NOT NULL CHECK (command_id BETWEEN 0 AND 65535),
    kind           INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),
    peer           TEXT    NOT NULL,
    status         INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 2),
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    correlation_id TEXT,
    replay_of      TEXT,
    error          TEXT,
    payload        BLOB    NOT NULL,
    payload_json   TEXT
) STRICT;
-- Resume: pending rows per command id, in order. Partial, so it holds only what is in flight.
CREATE INDEX mesh_outbound_pending ON mesh_outbound(command_id, seq) WHERE status = 0;
-- Audit and retention by time.
CREATE INDEX mesh_outbound_created ON mesh_outbound(created_at);

-- Messages this node received, unique on (origin, origin_seq) for dedupe.
-- status: 0 received, 1 handled, 2 failed (will be retried), 3 dead, 4 unhandled (no handler yet).
CREATE TABLE mesh_inbound (
    id             INTEGER PRIMARY KEY,
    origin         INTEGER NOT NULL REFERENCES mesh_peer(id),
    origin_seq     INTEGER NOT NULL,
    command_id     INTEGER NOT NULL CHECK (command_id BETWEEN 0 AND 65535),
    kind           INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),
    peer           TEXT    NOT NULL,
    status         INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 4),
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    correlation_id TEXT,
    replay_of      TEXT,
    error          TEXT,
    payload        BLOB    NOT NULL,
    payload_json   TEXT,
    UNIQUE (origin, origin_seq)
) STRICT;
-- Dispatch and resume: unfinished rows per command id, in arrival order.
CREATE INDEX mesh_inbound_open ON mesh_inbound(command_id, id) WHERE status IN (0, 2, 4);
CREATE INDEX mesh_inbound_created ON mesh_inbound(created_at);

-- Replay runs: a re-invocation of handlers against recorded inbound messages.
CREATE TABLE mesh_replay_run (
    id            INTEGER PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    command_id    INTEGER,
    description   TEXT
) STRICT;

-- One row per handler invocation. outcome: NULL while running, 0 ok, 1 error.
CREATE TABLE mesh_invocation (
    id            INTEGER PRIMARY KEY,
    inbound_id    INTEGER NOT NULL REFERENCES mesh_inbound(id) ON DELETE CASCADE,
    handler_index INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    replay_run    INTEGER REFERENCES mesh_replay_run(id) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       INTEGER CHECK (outcome IN (0, 1)),
    error         TEXT,
    response      BLOB,
    response_json TEXT
) STRICT;
CREATE INDEX mesh_invocation_inbound ON mesh_invocation(inbound_id, handler_index);
CREATE INDEX mesh_invocation_replay ON mesh_invocation(replay_run) WHERE replay_run IS NOT NULL;

-- The audit interface: one row per journaled message, both directions.
CREATE VIEW mesh_messages AS
SELECT
    o.seq AS id,
    'out' AS direction,
    (SELECT node_id FROM mesh_node) || ':' || o.seq AS message_id,
    o.command_id,
    CASE o.kind WHEN 0 THEN 'send' WHEN 1 THEN 'usend' WHEN 2 THEN 'request' ELSE 'response' END AS kind,
    o.peer,
    CASE o.status WHEN 0 THEN 'pending' WHEN 1 THEN 'acked' ELSE 'failed' END AS status,
    o.attempts,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.completed_at / 1000.0, 'unixepoch') AS completed_at,
    o.payload,
    o.payload_json,
    o.correlation_id,
    o.replay_of,
    o.error,
    (SELECT node_id FROM mesh_node) AS origin_node,
    o.seq AS origin_seq,
    o.created_at AS created_at_ms,
    o.completed_at AS completed_at_ms
FROM mesh_outbound o
UNION ALL
SELECT
    i.id,
    'in',
    p.node_id || ':' || i.origin_seq,
    i.command_id,
    CASE i.kind WHEN 0 THEN 'send' WHEN 1 THEN 'usend' WHEN 2 THEN 'request' ELSE 'response' END,
    i.peer,
    CASE i.status WHEN 0 THEN 'received' WHEN 1 THEN 'handled' WHEN 2 THEN 'failed' WHEN 3 THEN 'dead'
                  ELSE 'unhandled' END,
    i.attempts,
    strftime('%Y-%m-%dT%H:%M:%fZ', i.created_at / 1000.0, 'unixepoch'),
    strftime('%Y-%m-%dT%H:%M:%fZ', i.completed_at / 1000.0, 'unixepoch'),
    i.payload,
    i.payload_json,
    i.correlation_id,
    i.replay_of,
    i.error,
    p.node_id,
    i.origin_seq,
    i.created_at,
    i.completed_at
FROM mesh_inbound i JOIN mesh_peer p ON p.id = i.origin;

-- The audit interface: one row per handler invocation.
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

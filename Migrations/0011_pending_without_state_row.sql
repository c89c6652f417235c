-- Mesh journal, schema v11: a pending outbound message has no state row until something about it changes.
--
-- Why: every commit that journals a message to send inserted its mesh_outbound_state row (pending, one attempt)
-- next to its mesh_outbound row: a second B-tree insert and a second leaf, one more WAL frame (a whole page), in
-- the commit every send waits for. The state row now appears with the first change (acknowledged, failed, an
-- attempt more after a restart), written by an upsert that reads the message's command ID from its row. No state
-- row means: pending, one attempt, not completed, no error. Rows written before v11 keep their state rows (a
-- pending one with status 0 means the same).
--
-- Pending messages are read from mesh_outbound by sequence from the oldest pending one (the floor of v10), with
-- their state rows if any. mesh_messages shows a message without a state row as pending with one attempt.

DROP VIEW mesh_messages;
CREATE VIEW mesh_messages AS
SELECT
    o.seq AS id,
    'out' AS direction,
    (SELECT node_id FROM mesh_node) || ':' || o.seq AS message_id,
    o.command_id,
    CASE o.kind WHEN 0 THEN 'send' WHEN 1 THEN 'usend' WHEN 2 THEN 'request' ELSE 'response' END AS kind,
    o.peer,
    CASE coalesce(s.status, 0) WHEN 0 THEN 'pending' WHEN 1 THEN 'acked' ELSE 'failed' END AS status,
    coalesce(s.attempts, 1) AS attempts,
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
FROM mesh_outbound o LEFT JOIN mesh_outbound_state s ON s.seq = o.seq
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

-- Mesh journal, schema v12: a received message has no state row until its handlers end.
--
-- Why: the commit that journals a received message (the one its acknowledgement waits for) inserted its
-- mesh_inbound_state row, status received, and with it an entry of the open-set index mesh_inbound_open, deleted
-- again when the handlers ended: two more B-tree inserts and two more leaves, whole pages in the WAL, for every
-- message handled on its lane. The state row is now written when the message's status first changes (handled,
-- failed, dead, unhandled, answered), by an upsert that reads the command ID from the message's row. No state row
-- means: received, no attempt yet, not answered. A message handled by synchronous handlers already got its state
-- row once, with its final status, in the commit that journals it (v8); rows written before v12 keep theirs (a
-- state row with status 0 means the same).
--
-- The open set is read in two parts: state rows through mesh_inbound_open (failed, unhandled, and received rows
-- from before v12 or re-queued), and messages without a state row. Those (and v11's pending outbound messages) are
-- found by reading the narrow state rows in key order from a floor kept in memory (the oldest such message, as in
-- v10) and seeking the message table only in the gaps between them: keys are never reused and pruning deletes a
-- message with its state row, so a gap holds messages without a state row or none. mesh_messages shows a message
-- without a state row as received with 0 attempts.

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
    CASE coalesce(s.status, 0) WHEN 0 THEN 'received' WHEN 1 THEN 'handled' WHEN 2 THEN 'failed' WHEN 3 THEN 'dead'
                  ELSE 'unhandled' END,
    coalesce(s.attempts, 0),
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
FROM mesh_inbound i LEFT JOIN mesh_inbound_state s ON s.id = i.id JOIN mesh_peer p ON p.id = i.origin;

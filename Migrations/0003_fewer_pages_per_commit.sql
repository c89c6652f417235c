-- Mesh journal, schema v3: fewer B-tree pages written per commit.
--
-- Why: in WAL mode every page a transaction touches is written to the WAL (and later checkpointed). A
-- journaled message touched about seven pages, one per index, and each commit cost ~9 µs per page on the
-- reference machine. These indexes were each the second way to find the same rows:
--   * mesh_outbound_pending_seq / mesh_inbound_open_id: resume now walks mesh_outbound_pending /
--     mesh_inbound_open command ID by command ID (the order that matters is per command ID);
--   * mesh_outbound_state_done / mesh_inbound_state_done: retention now finds old messages through the
--     created_at indexes (a message completes after it is created, so "created before the cutoff" holds every
--     row that completed before it).
-- And mesh_node.last_out_seq was rewritten at every commit that sent something. It is now kept by a trigger,
-- only when a row with a higher sequence is deleted (pruning, or an operator's DELETE); opening takes the
-- larger of it and the highest sequence present, so sequences are still never reused.

DROP INDEX mesh_outbound_pending_seq;
DROP INDEX mesh_inbound_open_id;
DROP INDEX mesh_outbound_state_done;
DROP INDEX mesh_inbound_state_done;

UPDATE mesh_node SET last_out_seq = max(last_out_seq, (SELECT coalesce(max(seq), 0) FROM mesh_outbound));

CREATE TRIGGER mesh_outbound_keeps_last_seq AFTER DELETE ON mesh_outbound
WHEN old.seq > (SELECT last_out_seq FROM mesh_node WHERE singleton = 1)
BEGIN
    UPDATE mesh_node SET last_out_seq = old.seq WHERE singleton = 1;
END;

-- Mesh journal, schema v13: the floors of the unsettled messages are kept in mesh_node.
--
-- Why: messages without a state row (pending outbound ones since v11, received inbound ones since v12) are found by
-- walking the state rows from a floor below which every message is settled (acknowledged or failed; handled, dead
-- or unhandled). The floors lived in memory only, so a start walked every state row of the journal from the first,
-- and an inbound state row can carry a compact invocation's response (v9): on a journal of many answered requests
-- that read most of the file. A running node now records the floors it reached (every few seconds, in a commit it
-- shares), and an open starts its walks from them. A recorded floor is never above an unsettled message: a message
-- below it was settled in a committed snapshot and stays so, outbound sequences are never reused (v3), and neither
-- are inbound ids now: the writer hands them out from a counter that starts above last_in_id, which a trigger keeps
-- at the highest id deleted (as v3 does for outbound sequences), instead of SQLite's max(id) + 1, which reused the
-- ids of rows pruned at the end.

ALTER TABLE mesh_node ADD COLUMN outbound_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mesh_node ADD COLUMN inbound_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mesh_node ADD COLUMN last_in_id INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER mesh_inbound_keeps_last_id AFTER DELETE ON mesh_inbound
WHEN old.id > (SELECT last_in_id FROM mesh_node WHERE singleton = 1)
BEGIN
    UPDATE mesh_node SET last_in_id = old.id WHERE singleton = 1;
END;

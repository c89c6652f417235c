-- Mesh journal, schema v5: the open-set index's predicate without IN.
--
-- Why: SQLite 3.40 evaluates a partial index's `status IN (0, 2, 4)` by building a temporary B-tree holding
-- 0, 2 and 4 (OpenEphemeral, three inserts, a lookup) every time a row of mesh_inbound_state is inserted or
-- updated: about three temporary B-trees per received message (the insert, then the status update checks the
-- old and the new row), each with its own pager and page cache — measured ~30 allocations per message. The
-- same set written as comparisons costs three integer compares. Queries that use the index state the
-- predicate in the same words (`Journal.openPredicate`), which is how SQLite matches a partial index.

DROP INDEX mesh_inbound_open;
CREATE INDEX mesh_inbound_open ON mesh_inbound_state(command_id, id) WHERE status = 0 OR status = 2 OR status = 4;

-- Mesh journal, schema v8: no index on created_at.
--
-- Why: every journaled message wrote the right-most leaf of mesh_outbound_created or mesh_inbound_created, one
-- WAL frame (a whole page) per commit for an index the hot path never reads. Rows are inserted in the order they
-- are journaled, so their key (seq, id) already orders them by created_at: Mesh finds "the first row created at
-- or after T" by bisecting the key (Journal.firstKey), for retention and replay. Measured with `mesh bench`: WAL
-- frames per acknowledged message 12.5 -> 10.4, per request 28.3 -> 24.1.
--
-- The cost: an operator's ad-hoc query on the views that filters by created_at alone now reads the table (the
-- README's audit section says how to bound such a query by id instead).

DROP INDEX mesh_outbound_created;
DROP INDEX mesh_inbound_created;

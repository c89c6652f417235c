-- Mesh journal, schema v10: pending outbound messages are found by sequence, without an index of their own.
--
-- Why: every commit that sends a message inserted an entry into mesh_outbound_pending, and every commit that
-- marks one acknowledged deleted one: one more B-tree leaf, one more whole page in the WAL, in nearly every
-- commit of both nodes (a request and its response touched it four times). Pending messages are few and recent,
-- and sequences only grow: the journal reads them by sequence from the oldest pending one (a floor it keeps in
-- memory and moves forward as messages are acknowledged), through the state table's primary key. Resume, the
-- resend to a restarted peer and `mesh journal` read them that way.

DROP INDEX mesh_outbound_pending;

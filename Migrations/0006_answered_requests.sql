-- Mesh journal, schema v6: a received request remembers that it was answered.
--
-- A response is journaled in the same transaction that sets `answered`, so a request is answered at most once:
-- a dead request re-queued after its error response went out, or a chain re-run after a crash that came after
-- the response was journaled, runs its handlers again without sending the requester a second response.

ALTER TABLE mesh_inbound_state ADD COLUMN answered INTEGER NOT NULL DEFAULT 0 CHECK (answered IN (0, 1));

-- Mesh journal, schema v4: an outbound response row remembers whether it reports a handler failure.
--
-- A response whose request's handlers failed carries the error text as its payload and a flag in its envelope.
-- The flag was not journaled, so a response resent after a restart arrived as an ordinary response whose
-- payload did not decode: the requester saw `decode` instead of `handlerError` with the remote text.

ALTER TABLE mesh_outbound ADD COLUMN error_response INTEGER NOT NULL DEFAULT 0 CHECK (error_response IN (0, 1));

-- Mesh journal, schema v7: the cluster's shared data (Diarkis SetSharedData / GetSharedData / RemoveSharedData).
--
-- Every version a node accepted — written here or gossiped by another node — is one row: the history. The map
-- is, per key, the row with the highest (version, writer); a node loads it at start, so a restarted node has the
-- map before it hears from anyone. A removed key is a row with deleted = 1 and no value (a tombstone).

CREATE TABLE mesh_shared (
    id         INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    writer     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    value      BLOB,
    value_json TEXT,
    UNIQUE (key, version, writer)
);

-- The audit view (a stable interface, like mesh_messages): one row per accepted version, oldest first by id.
CREATE VIEW mesh_shared_data AS
SELECT
    s.key,
    s.value_json,
    s.version,
    s.writer,
    strftime('%Y-%m-%dT%H:%M:%fZ', s.updated_at / 1000.0, 'unixepoch') AS updated_at,
    s.deleted,
    s.updated_at AS updated_at_ms,
    s.id
FROM mesh_shared s;

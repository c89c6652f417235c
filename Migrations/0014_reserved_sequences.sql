-- Mesh journal, schema v14: outbound sequences are reserved ahead in mesh_node, by commits that are synced.
--
-- Why: with synchronous=NORMAL a power loss (or a kernel crash) may take the last committed transactions, and with
-- them outbound messages a peer had already received and acknowledged. The next start read the highest sequence
-- left in the journal and handed the lost ones out again: the peer, which journaled the first message under that
-- sequence, dropped the new one as a duplicate of it (and acknowledged it). The writer now keeps out_seq_reserved
-- ahead of every sequence it hands out, moving it in commits that are synced whatever the durability, and a start
-- continues above it. The same start, also synced, makes the boot epoch it takes survive a power loss.

ALTER TABLE mesh_node ADD COLUMN out_seq_reserved INTEGER NOT NULL DEFAULT 0;

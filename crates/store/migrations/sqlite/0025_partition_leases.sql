-- The partitioned risk engine (docs/design/partitioning.md): who owns each partition, under
-- which epoch, until when; and the processes that share the partitions, with the time their
-- heartbeat lapses (the fair share is the partitions over the live processes).
CREATE TABLE partition_leases (
    part        INTEGER PRIMARY KEY,
    owner       TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE partition_nodes (
    node        TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

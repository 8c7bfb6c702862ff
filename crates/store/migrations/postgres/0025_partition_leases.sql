-- The partitioned risk engine (docs/design/partitioning.md): who owns each partition, under
-- which epoch, until when; and the processes that share the partitions, with the time their
-- heartbeat lapses (the fair share is the partitions over the live processes).
CREATE TABLE partition_leases (
    part        BIGINT PRIMARY KEY,
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE partition_nodes (
    node        TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

-- Connec!'s record store: the current state of every record, a projection of
-- stream RECORDS for list and filter queries. It can be dropped and rebuilt
-- from sequence 1 at any time.
CREATE TABLE connec_records (
    org TEXT NOT NULL,
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org, entity, id)
);

CREATE INDEX connec_records_list ON connec_records (org, entity, deleted, updated_at);

-- The last stream sequence applied, committed in the same transaction as the rows.
CREATE TABLE connec_checkpoints (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

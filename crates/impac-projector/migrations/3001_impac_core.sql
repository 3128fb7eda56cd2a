-- Impac!'s projection of the record stream: the current state of the records
-- reports are made from, per projection version (a rebuild fills a new version
-- beside the one readers use, then switches them).
CREATE TABLE impac_records (
    version INTEGER NOT NULL,
    org TEXT NOT NULL,
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    seq BIGINT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (version, org, entity, id)
);

-- The last stream sequence folded into each projection version, committed with its rows.
CREATE TABLE impac_checkpoints (
    projection TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (projection, version)
);

-- Which version readers use.
CREATE TABLE impac_active (
    projection TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);

-- Events a projection could not fold (policy: skip, recorded here).
CREATE TABLE impac_dead_letters (
    projection TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (projection, version, seq)
);

-- Exchange rates loaded by the operator: 1 base = rate quote.
CREATE TABLE impac_rates (
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    rate TEXT NOT NULL,
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (base, quote, as_of)
);

-- Connector installs: what each (org, connector app) syncs and how it fares.
-- Credentials (the outside API's and the app's own) are sealed with the platform key.
CREATE TABLE connector_installs (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,
    sealed_credentials TEXT NOT NULL,
    prefer TEXT NOT NULL,
    interval_secs BIGINT NOT NULL,
    push_cursor BIGINT NOT NULL,
    last_success_at TEXT,
    last_error TEXT,
    last_error_at TEXT,
    failures BIGINT NOT NULL,
    next_attempt_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org, app_id)
);

-- Per entity of an install: direction, the outside cursor, the historical cut-off, counts.
CREATE TABLE connector_entities (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    direction TEXT NOT NULL,
    cursor TEXT,
    cutoff TEXT,
    pulled BIGINT NOT NULL,
    pushed BIGINT NOT NULL,
    conflicts BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    PRIMARY KEY (org, app_id, entity)
);

-- What each side looked like at the last sync of a record (the outside tag,
-- the Connec! version), to tell own echoes and changes on both sides. The id
-- map itself is Connec!'s (outside ids are the connector app's local ids).
CREATE TABLE connector_records (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    outside_id TEXT NOT NULL,
    outside_tag TEXT NOT NULL,
    connec_version BIGINT NOT NULL,
    PRIMARY KEY (org, app_id, entity, outside_id)
);

-- Conflicts settled and records refused, newest last (`id` is a UUIDv7).
CREATE TABLE connector_events (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX connector_events_install ON connector_events (org, app_id, id);

-- The delivery log: recent webhook attempts (capped), kept across restarts.
-- `id` is a UUIDv7: ordering by it is ordering by time.
CREATE TABLE delivery_attempts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    org TEXT NOT NULL,
    status TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX delivery_attempts_app ON delivery_attempts (app_id, id);

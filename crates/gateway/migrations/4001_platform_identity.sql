-- The platform's identity: one row, made at the first start. The bus records
-- it too (KV bucket MNO_PLATFORM), so that a process with another database
-- cannot join this platform's bus and take its events.
CREATE TABLE platform_identity (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

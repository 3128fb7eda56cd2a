-- Which pass the install's last error came from ('install', 'pull', 'pull <entity>',
-- 'push', 'push <entity>'): the next successful pass of it clears the error.
ALTER TABLE connector_installs ADD COLUMN last_error_scope TEXT;
-- Outside records Connec! refused for a reference that names no record of the
-- org: counted per sync that tried them, and parked (parked_at set) after a
-- few, so that their entity's cursor moves on; retried at each sync.
CREATE TABLE connector_parked (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    outside_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    passes BIGINT NOT NULL,
    first_at TEXT NOT NULL,
    parked_at TEXT,
    PRIMARY KEY (org, app_id, entity, outside_id)
);

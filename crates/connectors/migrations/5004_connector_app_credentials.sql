-- A connector app's own API key and secret, registered once by its owner and
-- used by every install configured without credentials of its own (so no
-- org admin needs the app's secret). Sealed with the platform key.
CREATE TABLE connector_app_credentials (
    app_id TEXT PRIMARY KEY,
    sealed_credentials TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Dashboards: each user's own boards over one organisation, with their
-- widgets in display order (a JSON array of {"widget": "<category>/<name>"}).
CREATE TABLE impac_dashboards (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    widgets TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX impac_dashboards_owner ON impac_dashboards (owner, org, created_at);

-- KPIs: a value of a widget watched against a target. `breached` is whether
-- the last evaluation found it outside the target (an alert was raised then,
-- and no other is until it comes back inside).
CREATE TABLE impac_kpis (
    id TEXT PRIMARY KEY,
    org_ids TEXT NOT NULL,
    widget TEXT NOT NULL,
    element TEXT NOT NULL,
    params TEXT NOT NULL,
    currency TEXT NOT NULL,
    target_min TEXT,
    target_max TEXT,
    alert_webhook TEXT,
    webhook_secret TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    breached INTEGER NOT NULL DEFAULT 0,
    last_value TEXT,
    evaluated_at TEXT
);

-- Alerts raised, newest last; `webhook` says how the signed POST went.
CREATE TABLE impac_alerts (
    id TEXT PRIMARY KEY,
    kpi_id TEXT NOT NULL,
    org TEXT NOT NULL,
    widget TEXT NOT NULL,
    element TEXT NOT NULL,
    value TEXT NOT NULL,
    target TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    webhook TEXT
);
CREATE INDEX impac_alerts_org ON impac_alerts (org, raised_at);

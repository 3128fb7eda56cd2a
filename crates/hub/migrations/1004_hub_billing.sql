-- Single billing and account webhooks. Same conventions as 1001: times are
-- unix milliseconds, money is integer minor units (cents), flags BIGINT 0/1.

-- One bill an app charged an org. The Hub event bill_created carries the same
-- facts; invoices are folded from the stream, this table answers the API.
CREATE TABLE hub_bills (
    id                TEXT PRIMARY KEY,
    app_id            TEXT NOT NULL REFERENCES hub_apps (id),
    org_id            TEXT NOT NULL REFERENCES hub_orgs (id),
    recurring_bill_id TEXT,
    idempotency_key   TEXT,
    request_hash      TEXT,
    price_cents       BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    description       TEXT NOT NULL,
    units             BIGINT NOT NULL,
    period_started_at BIGINT,
    period_ended_at   BIGINT,
    third_party       BIGINT NOT NULL,
    due_period        TEXT NOT NULL,        -- YYYY-MM: the first invoice it may go on
    status            TEXT NOT NULL,        -- submitted | invoiced | cancelled
    invoice_id        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX hub_bills_app ON hub_bills (app_id, created_at);
CREATE INDEX hub_bills_org ON hub_bills (org_id, status);
CREATE UNIQUE INDEX hub_bills_idempotency ON hub_bills (app_id, idempotency_key);

CREATE TABLE hub_recurring_bills (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES hub_apps (id),
    org_id          TEXT NOT NULL REFERENCES hub_orgs (id),
    idempotency_key TEXT,
    request_hash    TEXT,
    price_cents     BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    description     TEXT NOT NULL,
    period          TEXT NOT NULL,          -- day | week | semimonth | month | year
    frequency       BIGINT NOT NULL,
    cycles          BIGINT,                 -- NULL: until cancelled
    start_date      TEXT NOT NULL,          -- YYYY-MM-DD
    initial_cents   BIGINT NOT NULL,
    cycles_billed   BIGINT NOT NULL,
    status          TEXT NOT NULL,          -- submitted | active | expired | cancelled
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX hub_recurring_bills_app ON hub_recurring_bills (app_id, created_at);
CREATE UNIQUE INDEX hub_recurring_bills_idempotency ON hub_recurring_bills (app_id, idempotency_key);

-- One invoice per (org, period, currency); the id is derived from those three,
-- so a second run (or a run after a crash) cannot issue it twice. `body` is
-- the canonical JSON the billing run computed from stream HUB up to `cut_seq`.
CREATE TABLE hub_invoices (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES hub_orgs (id),
    period      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    cut_seq     BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX hub_invoices_org ON hub_invoices (org_id, period);

-- Account webhooks already delivered, per (Hub event, app): an event retried
-- for one app is not sent again to the apps that already took it.
CREATE TABLE hub_account_deliveries (
    event_id     TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, app_id)
);

-- Account webhooks ask which apps an org had installed at a member event:
-- the install and uninstall events of the org before it.
CREATE INDEX hub_outbox_org_kind ON hub_outbox (org, kind, id);

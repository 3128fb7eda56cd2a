-- The Hub's tables. SQL that runs unchanged on SQLite and PostgreSQL:
-- times are unix milliseconds (BIGINT), flags are BIGINT 0/1, lists are JSON text.

CREATE TABLE hub_users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,      -- lower-cased
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE hub_sessions (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,        -- SHA-256 of the random token, hex
    user_id     TEXT NOT NULL REFERENCES hub_users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX hub_sessions_user ON hub_sessions (user_id);

CREATE TABLE hub_orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    currency   TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    country    TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES hub_users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE hub_members (
    org_id     TEXT NOT NULL REFERENCES hub_orgs (id),
    user_id    TEXT NOT NULL REFERENCES hub_users (id),
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX hub_members_user ON hub_members (user_id);

CREATE TABLE hub_apps (
    id                      TEXT PRIMARY KEY,
    owner_id                TEXT NOT NULL REFERENCES hub_users (id),
    name                    TEXT NOT NULL,
    stack                   TEXT NOT NULL,
    webhook_url             TEXT,
    account_webhook_url     TEXT,
    shared_entities         TEXT NOT NULL,   -- JSON [{entity, read, write}]
    webhook_disabled        BIGINT NOT NULL DEFAULT 0,
    webhook_disabled_reason TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- API credentials: the secret is stored as SHA-256 (it is 256 random bits).
-- expires_at is NULL for the current credentials, set when they are rotated out.
CREATE TABLE hub_app_credentials (
    key_id      TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES hub_apps (id),
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX hub_app_credentials_app ON hub_app_credentials (app_id);

-- Webhook signing secrets are kept as they are: delivery signs with them.
CREATE TABLE hub_webhook_secrets (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES hub_apps (id),
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX hub_webhook_secrets_app ON hub_webhook_secrets (app_id);

CREATE TABLE hub_installs (
    org_id       TEXT NOT NULL REFERENCES hub_orgs (id),
    app_id       TEXT NOT NULL REFERENCES hub_apps (id),
    data_sharing BIGINT NOT NULL,
    installed_by TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, app_id)
);
CREATE INDEX hub_installs_app ON hub_installs (app_id);

-- The outbox: one row per Hub event, written in the transaction of the change.
-- Ids come from hub_counters under the row lock, so they increase in commit order.
CREATE TABLE hub_outbox (
    id           BIGINT PRIMARY KEY,
    event_id     TEXT NOT NULL,
    org          TEXT NOT NULL,
    kind         TEXT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX hub_outbox_unpublished ON hub_outbox (published_at, id);

CREATE TABLE hub_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO hub_counters (name, value) VALUES ('outbox', 0);

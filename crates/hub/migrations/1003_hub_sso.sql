-- Single sign-on: the Hub as an OpenID Connect provider (docs/api/sso.md).
-- Same conventions as 1001: unix milliseconds, BIGINT flags, JSON text lists.

-- What an app registers to sign its users in: URLs matched exactly.
CREATE TABLE hub_sso_clients (
    app_id                    TEXT PRIMARY KEY REFERENCES hub_apps (id),
    redirect_uris             TEXT NOT NULL,   -- JSON ["https://app.example/callback"]
    post_logout_redirect_uris TEXT NOT NULL,   -- JSON list
    backchannel_logout_uri    TEXT,
    updated_at                BIGINT NOT NULL
);

-- ID token signing keys (RS256). The newest unretired key signs; a retired key
-- stays published in the JWKS until published_until, when its tokens have expired.
CREATE TABLE hub_sso_keys (
    kid             TEXT PRIMARY KEY,
    private_pem     TEXT NOT NULL,           -- PKCS#8 PEM
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    published_until BIGINT
);

-- Authorization codes: single use (used_at), short-lived (expires_at); only the hash is kept.
CREATE TABLE hub_sso_codes (
    code_hash      TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES hub_apps (id),
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES hub_users (id),
    session_id     TEXT NOT NULL REFERENCES hub_sessions (id),
    org_id         TEXT NOT NULL REFERENCES hub_orgs (id),
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    scope          TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- Access tokens for userinfo; revoked with their code when the code is replayed.
CREATE TABLE hub_sso_access_tokens (
    token_hash TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL,
    app_id     TEXT NOT NULL REFERENCES hub_apps (id),
    user_id    TEXT NOT NULL REFERENCES hub_users (id),
    session_id TEXT NOT NULL REFERENCES hub_sessions (id),
    org_id     TEXT NOT NULL REFERENCES hub_orgs (id),
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX hub_sso_access_tokens_code ON hub_sso_access_tokens (code_hash);

-- Which apps a Hub session signed in to: the session check answers only them,
-- and back-channel logout tells them (logout_sent_at once the app took it).
CREATE TABLE hub_sso_logins (
    session_id     TEXT NOT NULL REFERENCES hub_sessions (id),
    app_id         TEXT NOT NULL REFERENCES hub_apps (id),
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES hub_users (id),
    created_at     BIGINT NOT NULL,
    logout_sent_at BIGINT,
    PRIMARY KEY (session_id, app_id)
);

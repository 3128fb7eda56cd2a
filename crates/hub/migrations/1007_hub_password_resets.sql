-- One-time password reset links an operator makes (`mno users reset-password`):
-- only the SHA-256 of the random token is kept. A link works until
-- `expires_at`, once (`used_at`).
CREATE TABLE hub_password_resets (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES hub_users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX hub_password_resets_user ON hub_password_resets (user_id);

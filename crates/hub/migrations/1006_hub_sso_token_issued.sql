-- When each SSO access token was issued (unix ms): a membership or an install
-- made after it (the user removed and added again, the app uninstalled and
-- installed again) does not bring the token back. Older tokens have none.
ALTER TABLE hub_sso_access_tokens ADD COLUMN issued_at BIGINT;

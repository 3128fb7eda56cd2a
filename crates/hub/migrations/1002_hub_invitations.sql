-- Invitations to join an org. Adding a member by email makes one; the invited
-- user (whoever signs in with that email, now or after signing up) accepts or
-- declines it, and only acceptance makes a member. A row lives while pending:
-- accepting, declining or revoking deletes it.
CREATE TABLE hub_invitations (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES hub_orgs (id),
    email      TEXT NOT NULL,
    role       TEXT NOT NULL,
    invited_by TEXT NOT NULL REFERENCES hub_users (id),
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, email)
);
CREATE INDEX hub_invitations_email ON hub_invitations (email);

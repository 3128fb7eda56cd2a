-- Creates outside not known to be done: a row is written before the create is
-- sent and removed once Connec! knows the outside id. A row found at the next
-- attempt means an answer was lost (or the id not yet told to Connec!): the
-- same key is sent again, the record looked up by its marker, or, answered
-- before, not created again.
CREATE TABLE connector_creates (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    global_id TEXT NOT NULL,
    attempt_key TEXT NOT NULL,
    outside_id TEXT,
    outside_tag TEXT,
    since TEXT NOT NULL,
    PRIMARY KEY (org, app_id, entity, global_id)
);

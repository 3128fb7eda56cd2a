-- Connec! records held back from the outside API: a reference of theirs names
-- a record the outside API has no id for yet (created just before, its push
-- not done). Pushed once it has one.
CREATE TABLE connector_held (
    org TEXT NOT NULL,
    app_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    global_id TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (org, app_id, entity, global_id)
);

-- Records deleted in Connec! because the outside API no longer has them:
-- counted per entity (they were counted as pulled, so invisible).
ALTER TABLE connector_entities ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;

-- Data sharing per entity: an install may narrow what it shares to some of
-- the app's shared entities. NULL (every install made before, and the
-- default) shares all of them; otherwise a JSON list of collection names.
ALTER TABLE hub_installs ADD COLUMN entities TEXT;

-- Organisations whose admins may load exchange rates through the API
-- (the operator names them with `mno impac rates allow-org <org>`).
CREATE TABLE impac_rate_loaders (
    org TEXT PRIMARY KEY
);

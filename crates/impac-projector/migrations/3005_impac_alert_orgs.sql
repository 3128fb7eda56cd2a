-- Every organisation an alert's KPI watches (a JSON array): the alert's value is a
-- figure over all of them, so it is listed only to callers who may read each one.
-- Alerts raised before this column existed take their KPI's organisations, or,
-- when the KPI is gone, the one organisation they were filed under.
ALTER TABLE impac_alerts ADD COLUMN org_ids TEXT;
UPDATE impac_alerts SET org_ids = COALESCE(
    (SELECT impac_kpis.org_ids FROM impac_kpis WHERE impac_kpis.id = impac_alerts.kpi_id),
    '["' || org || '"]'
);

-- Revision 0607bc5b8537: an org's usage for a month.
CREATE INDEX CONCURRENTLY idx_usage_counters_org_period ON usage_counters (org_id, period_month);

-- Revision 0607bc5b8537: an org's active subscription.
CREATE INDEX CONCURRENTLY idx_subscriptions_org_status ON subscriptions (org_id, status);

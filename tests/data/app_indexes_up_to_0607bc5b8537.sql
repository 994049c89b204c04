-- What the app's alembic history built by revision 0607bc5b8537 (plain, non-concurrent DDL,
-- as alembic's op.create_index / op.create_unique_constraint emit it). Used to test adopting.
CREATE UNIQUE INDEX ix_users_email ON users USING btree (email);
CREATE UNIQUE INDEX ix_sessions_token ON sessions (token);
CREATE INDEX idx_memberships_org_user ON memberships (org_id, user_id);
CREATE INDEX idx_subscriptions_org_status ON subscriptions (org_id, status);
CREATE INDEX idx_usage_counters_org_period ON usage_counters (org_id, period_month);
CREATE INDEX idx_content_jobs_org_created_desc ON content_jobs (org_id, created_at DESC);
CREATE INDEX idx_content_jobs_status ON content_jobs (status);
ALTER TABLE billing_events ADD CONSTRAINT uq_billing_events_provider_event_id_composite UNIQUE (provider, provider_event_id);

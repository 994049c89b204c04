-- Revision 0607bc5b8537: webhook deduplication, one row per (provider, provider_event_id).
-- Made online: the unique index is built concurrently (no write lock while it builds),
-- then attached as a constraint, which only needs a brief lock (ops sets lock_timeout).
CREATE UNIQUE INDEX CONCURRENTLY uq_billing_events_provider_event_id_composite
    ON billing_events (provider, provider_event_id);
ALTER TABLE billing_events
    ADD CONSTRAINT uq_billing_events_provider_event_id_composite
    UNIQUE USING INDEX uq_billing_events_provider_event_id_composite;

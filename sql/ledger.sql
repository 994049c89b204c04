-- The ledger of applied migrations, created by `ops migrate apply` on first use. {schema} is its schema:
-- public unless --ledger-schema (S10_LEDGER_SCHEMA) says otherwise.
CREATE TABLE IF NOT EXISTS {schema}.ops_migrations (
    id          text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    applied_by  text NOT NULL,
    outcome     text NOT NULL
);
COMMENT ON TABLE {schema}.ops_migrations IS 'Index migrations applied by s10-ops (ops migrate); do not edit by hand';

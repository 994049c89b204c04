-- What ops migrate has applied (the ledger). {schema} is its schema: public
-- unless --ledger-schema (S10_LEDGER_SCHEMA) says otherwise.
SELECT id, checksum, applied_at, duration_ms, applied_by, outcome
FROM {schema}.ops_migrations
ORDER BY id;

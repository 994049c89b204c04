-- What ops migrate has applied (the ledger). {ledger} is its qualified name, public.ops_migrations
-- unless --ledger-schema says otherwise.
SELECT id, checksum, applied_at, duration_ms, applied_by, outcome
FROM {ledger}
ORDER BY id;

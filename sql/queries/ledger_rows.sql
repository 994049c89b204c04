-- What ops migrate has applied (the ledger).
SELECT id, checksum, applied_at, duration_ms, applied_by, outcome
FROM ops_migrations
ORDER BY id;

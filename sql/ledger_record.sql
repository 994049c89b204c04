-- Record one applied migration in the ledger, {schema}.ops_migrations (insert, or refresh after a repair).
INSERT INTO {schema}.ops_migrations (id, checksum, duration_ms, applied_by, outcome)
VALUES (%(id)s, %(checksum)s, %(duration_ms)s, %(applied_by)s, %(outcome)s)
ON CONFLICT (id) DO UPDATE
   SET checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms,
       applied_by = EXCLUDED.applied_by, outcome = EXCLUDED.outcome;

-- The deploy's quick no-change check, run with psql (no Python on the host): a digest of the
-- migrations ledger (in the schema named by the psql variable :ledger_schema), INVALID indexes,
-- how many of the declared indexes exist (psql variable :'names', a text[] literal of
-- schema-qualified names), the tools' extensions and the s10 roles present. When it matches
-- this checkout the deploy skips `ops migrate status` and `ops provision --dry-run`; otherwise
-- those run as before. One line, fields separated by '|'.
SELECT (SELECT md5(coalesce(string_agg(id || ':' || checksum, ',' ORDER BY id COLLATE "C"), '')) FROM :"ledger_schema".ops_migrations),
       (SELECT count(*) FROM pg_index WHERE NOT indisvalid),
       (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'i' AND n.nspname || '.' || c.relname = ANY (:'names'::text[])),
       (SELECT coalesce(string_agg(extname, ',' ORDER BY extname), '') FROM pg_extension
         WHERE extname IN ('pg_stat_statements', 'pgstattuple', 'hypopg', 'amcheck')),
       (SELECT count(*) FROM pg_roles WHERE rolname IN ('s10_maintenance', 's10_monitoring', 's10_diagnosis'));

-- The three group roles (NOLOGIN) that s10-ops runs as, with the exact grants each command needs.
-- Grant one to a login role: GRANT s10_maintenance TO deploy_user;  Idempotent: run it on every deploy
-- (`ops roles apply --schema <app schema>`), or by hand with psql:
--   psql -v schema=public -v ledger_schema=public -v owner=app_owner -v extension_schema=public \
--        -v amcheck_schema=public -f sql/roles.sql
-- :"schema" is the app's schema, :"ledger_schema" the schema of ops_migrations. `ops roles apply` runs a
-- statement naming :"owner" once per role that owns tables in the app's schema (never for a superuser),
-- :"extension_schema" once per schema holding pg_stat_statements, pgstattuple or amcheck, :"amcheck_schema"
-- where amcheck is installed, and one marked `-- when: ledger exists` only once the ledger table is there.

-- The roles themselves: group roles that cannot log in and hold no attribute beyond INHERIT.
DO $roles$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['s10_monitoring', 's10_diagnosis', 's10_maintenance'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
    END IF;
  END LOOP;
END $roles$;

-- s10_monitoring: ops maintain usage / bloat (also --exact) and the exporter.
-- pg_monitor = pg_read_all_stats (every backend's statistics and query text), pg_read_all_settings,
-- and pg_stat_scan_tables (may execute pgstattuple's pgstatindex).
GRANT pg_monitor TO s10_monitoring;
GRANT USAGE ON SCHEMA :"schema" TO s10_monitoring;
-- pg_stats shows a column's statistics only to roles that may read the column: the bloat estimate needs them.
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO s10_monitoring;
-- the extensions' objects are named with their schema (pg_extension.extnamespace), which needs USAGE on it
GRANT USAGE ON SCHEMA :"extension_schema" TO s10_monitoring;
-- ops playbook integrity (amcheck revokes bt_index_check from PUBLIC; it takes only AccessShareLock)
GRANT EXECUTE ON FUNCTION :"amcheck_schema".bt_index_check(regclass, boolean) TO s10_monitoring;

-- s10_diagnosis: the playbooks that run the app's statements (slow-query). Reads the app's tables and
-- nothing else: no superuser, no replication, no BYPASSRLS, and not a member of pg_signal_backend.
GRANT USAGE ON SCHEMA :"schema" TO s10_diagnosis;
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO s10_diagnosis;
REVOKE pg_signal_backend FROM s10_diagnosis;

-- s10_maintenance: ops migrate apply, ops maintain reindex and analyze. CREATE INDEX, REINDEX, DROP INDEX
-- and ANALYZE need the table owner's rights before PostgreSQL 17 (no MAINTAIN privilege yet), so it is a
-- member of the role that owns the app's tables; it reads what the reports read (s10_monitoring: bloat,
-- blockers, build progress, the data directory's free space) and keeps the ledger.
GRANT s10_monitoring TO s10_maintenance;
GRANT USAGE ON SCHEMA :"schema" TO s10_maintenance;
GRANT :"owner" TO s10_maintenance;
GRANT USAGE, CREATE ON SCHEMA :"ledger_schema" TO s10_maintenance;
-- when: ledger exists
GRANT SELECT, INSERT, UPDATE ON :"ledger_schema".ops_migrations TO s10_maintenance;

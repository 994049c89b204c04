-- The workload `ops advise` plans: this database's heaviest top-level statements by total
-- execution time in pg_stat_statements. ops pins search_path to the extension's own schema
-- (from extension_schema.sql) while it runs this, so the view is the extension's, not a lookalike.
-- Constants are $n placeholders in `query` (pg_stat_statements normalizes them).
SELECT s.queryid,
       s.query,
       s.calls,
       s.total_exec_time AS total_ms,
       s.mean_exec_time  AS mean_ms,
       s.rows
FROM pg_stat_statements s
WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND s.toplevel
  AND s.query ~* '^\s*(with|select|update|delete|insert)\s'
ORDER BY s.total_exec_time DESC
LIMIT %(limit)s;

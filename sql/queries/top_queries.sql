-- The heaviest statements in this database by total execution time, from pg_stat_statements
-- (needs shared_preload_libraries = 'pg_stat_statements' and CREATE EXTENSION pg_stat_statements).
-- Top-level statements only; EXPLAIN runs (a diagnosis, e.g. ops playbook slow-query) are left out.
-- share_of_total: this statement's part of all listed time, in percent.
-- {schema} is the extension's schema (pg_extension.extnamespace); ops playbook top-queries leaves out the
-- tool's own statements (these files, by pglast fingerprint) after reading, so it asks for more rows than it lists.
SELECT s.queryid,
       s.query,
       s.calls,
       s.total_exec_time                                        AS total_ms,
       s.mean_exec_time                                         AS mean_ms,
       s.max_exec_time                                          AS max_ms,
       s.rows,
       100 * s.total_exec_time / nullif(sum(s.total_exec_time) OVER (), 0) AS share_of_total,
       100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0) AS cache_hit_pct,
       (SELECT i.stats_reset FROM {schema}.pg_stat_statements_info i)    AS since
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  AND s.toplevel
  AND s.query !~* '^\s*explain\s'
ORDER BY s.total_exec_time DESC
LIMIT %(limit)s;

-- Size and statistics freshness of one table (name resolved through search_path), for `ops playbook slow-query`:
-- the planner's row count (reltuples, -1 = never analyzed or vacuumed), live rows, rows changed since the last
-- ANALYZE, and when it last ran. Stale: never analyzed, or more rows changed than autovacuum's default
-- analyze threshold (50 + 10 percent of the table).
SELECT c.oid::regclass::text                      AS table,
       c.reltuples::bigint                        AS reltuples,
       c.relpages                                 AS relpages,
       pg_table_size(c.oid)                       AS bytes,
       s.n_live_tup                               AS live_rows,
       s.n_mod_since_analyze                      AS modified_since_analyze,
       s.last_analyze,
       s.last_autoanalyze,
       greatest(s.last_analyze, s.last_autoanalyze) AS analyzed_at,
       (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND s.n_live_tup > 0)
         OR s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) AS stale
FROM pg_class c
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = to_regclass(%(table)s) AND c.relkind IN ('r', 'p', 'm');

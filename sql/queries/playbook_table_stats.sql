-- Size and statistics freshness of one table (name resolved through search_path), for `ops playbook slow-query`:
-- the planner's row count (reltuples, -1 = never analyzed or vacuumed), live rows, rows changed since the last
-- ANALYZE, and when it last ran. Whether that is stale is decided by stale_statistics.sql (one rule, shared
-- with ops maintain analyze).
SELECT c.oid::regclass::text                           AS table,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       n.nspname                                       AS schema,
       c.relname                                       AS relname,
       c.reltuples::bigint                             AS reltuples,
       c.relpages                                      AS relpages,
       pg_table_size(c.oid)                            AS bytes,
       s.n_live_tup                                    AS live_rows,
       s.n_mod_since_analyze                           AS modified_since_analyze,
       greatest(s.last_analyze, s.last_autoanalyze)    AS analyzed_at
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = to_regclass(%(table)s) AND c.relkind IN ('r', 'p', 'm');

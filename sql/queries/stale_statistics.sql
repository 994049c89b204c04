-- Tables whose planner statistics are stale: never analyzed, or more rows changed since the last
-- (auto)analyze than %(min_rows)s + %(fraction)s x the table's rows (the autovacuum_analyze rule).
-- Only the app's schemas (%(schemas)s); may_analyze: whether this role may (owner or database owner).
SELECT s.schemaname                                         AS schema,
       s.relname                                            AS table,
       quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS qualified,
       greatest(c.reltuples, 0)::bigint                     AS rows_estimate,
       s.n_live_tup                                         AS live_rows,
       s.n_mod_since_analyze                                AS modified_since_analyze,
       greatest(s.last_analyze, s.last_autoanalyze)         AS last_analyzed,
       CASE WHEN greatest(s.last_analyze, s.last_autoanalyze) IS NULL THEN 'never analyzed'
            ELSE s.n_mod_since_analyze || ' rows modified since the last analyze (threshold '
                 || ceil(%(min_rows)s + %(fraction)s * greatest(c.reltuples, s.n_live_tup, 0))::bigint || ')'
       END                                                  AS reason,
       pg_table_size(s.relid)                               AS bytes,
       pg_has_role(c.relowner, 'USAGE')
         OR pg_has_role((SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'USAGE')
                                                            AS may_analyze
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = ANY (%(schemas)s::text[])
  AND (greatest(s.last_analyze, s.last_autoanalyze) IS NULL
   OR s.n_mod_since_analyze > %(min_rows)s + %(fraction)s * greatest(c.reltuples, s.n_live_tup, 0))
ORDER BY s.n_mod_since_analyze DESC, s.schemaname, s.relname;

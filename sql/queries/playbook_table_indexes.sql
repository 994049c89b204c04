-- The indexes of one table (name resolved through search_path), for `ops playbook slow-query`: key columns
-- (or expressions) in order with their direction, validity, and how often each was used since the stats reset.
SELECT c.relname                                   AS index,
       n.nspname                                   AS schema,
       i.indisvalid                                AS valid,
       i.indisunique                               AS is_unique,
       i.indisprimary                              AS is_primary,
       am.amname                                   AS method,
       i.indpred IS NOT NULL                       AS partial,
       pg_get_indexdef(i.indexrelid)               AS indexdef,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)         AS columns,
       ARRAY(SELECT (i.indoption[k - 1] & 1) = 1
             FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)         AS descending,
       s.idx_scan                                  AS scans
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
WHERE i.indrelid = to_regclass(%(table)s)
ORDER BY c.relname;

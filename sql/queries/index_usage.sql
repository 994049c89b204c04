-- Every index in user schemas: size, scans and tuples read since the statistics reset, and what
-- would make dropping it unsafe (unique, primary key, backs a constraint). Only the schemas in
-- %(schemas)s (the app's: public unless --schema says otherwise); same-named objects elsewhere are not read.
SELECT n.nspname                                   AS schema,
       t.relname                                   AS table,
       c.relname                                   AS index,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       am.amname                                   AS method,
       pg_relation_size(i.indexrelid)              AS bytes,
       coalesce(s.idx_scan, 0)                     AS scans,
       coalesce(s.idx_tup_read, 0)                 AS tuples_read,
       coalesce(s.idx_tup_fetch, 0)                AS tuples_fetched,
       i.indisunique                               AS is_unique,
       i.indisprimary                              AS is_primary,
       i.indisvalid                                AS is_valid,
       con.conname                                 AS constraint_name,
       pg_get_indexdef(i.indexrelid)               AS definition
FROM pg_index i
JOIN pg_class c      ON c.oid = i.indexrelid
JOIN pg_class t      ON t.oid = i.indrelid
JOIN pg_namespace n  ON n.oid = c.relnamespace
JOIN pg_am am        ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x', 'f')
                           AND con.conrelid = i.indrelid
WHERE n.nspname = ANY (%(schemas)s::text[])
ORDER BY n.nspname, t.relname, c.relname;

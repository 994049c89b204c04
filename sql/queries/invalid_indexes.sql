-- INVALID indexes (pg_index.indisvalid = false), minus those a running CREATE INDEX / REINDEX
-- is building right now (seen in pg_stat_progress_create_index, or held by another backend in a mode
-- stronger than the ones queries and writers take on every index of a table they use). Only the app's
-- schemas (%(schemas)s).
SELECT n.nspname                                   AS schema,
       t.relname                                   AS table,
       c.relname                                   AS index,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       pg_relation_size(i.indexrelid)              AS bytes,
       i.indisready                                AS is_ready,
       con.conname                                 AS constraint_name,
       c.relname ~ '_cc(new|old)[0-9]*$'           AS reindex_leftover,
       pg_get_indexdef(i.indexrelid)               AS definition
FROM pg_index i
JOIN pg_class c     ON c.oid = i.indexrelid
JOIN pg_class t     ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')
WHERE NOT i.indisvalid
  AND n.nspname = ANY (%(schemas)s::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                  WHERE p.index_relid = i.indexrelid OR p.relid = i.indrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.relation = i.indexrelid AND l.pid <> pg_backend_pid()
                     AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))
ORDER BY n.nspname, t.relname, c.relname;

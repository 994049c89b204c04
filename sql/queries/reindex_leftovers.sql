-- Leftovers of interrupted REINDEX ... CONCURRENTLY runs: INVALID indexes named <index>_ccnew[N]
-- (the new copy never finished: drop it) or <index>_ccold[N] (the swap happened, the old copy was
-- not dropped: drop it). A leftover that a running build is still making is reported with
-- in_progress = true and must not be touched (a build shows in pg_stat_progress_create_index and holds
-- the index in SHARE UPDATE EXCLUSIVE mode or stronger; queries and writers hold weaker locks).
-- Only the app's schemas (%(schemas)s).
SELECT n.nspname                                   AS schema,
       t.relname                                   AS table,
       quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS qualified_table,
       c.relname                                   AS index,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       substring(c.relname from '_(cc(?:new|old))[0-9]*$') AS kind,
       pg_relation_size(i.indexrelid)              AS bytes,
       (EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                WHERE p.index_relid = i.indexrelid OR p.relid = i.indrelid)
        OR EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.relation = i.indexrelid AND l.pid <> pg_backend_pid()
                     AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))) AS in_progress
FROM pg_index i
JOIN pg_class c     ON c.oid = i.indexrelid
JOIN pg_class t     ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND c.relname ~ '_cc(new|old)[0-9]*$'
  AND n.nspname = ANY (%(schemas)s::text[])
ORDER BY n.nspname, t.relname, c.relname;

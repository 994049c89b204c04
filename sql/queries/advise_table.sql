-- One table `ops advise` proposes indexes for (name resolved through search_path as the app's
-- statements are): its columns, size, write traffic (updates, HOT updates) and how many indexes
-- every write already maintains.
SELECT n.nspname                            AS schema,
       c.relname                            AS table,
       format('%%I.%%I', n.nspname, c.relname) AS qualified,
       c.reltuples::bigint                  AS reltuples,
       pg_table_size(c.oid)                 AS bytes,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)             AS columns,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)::int AS index_count,
       coalesce(s.n_tup_ins, 0)             AS inserts,
       coalesce(s.n_tup_upd, 0)             AS updates,
       coalesce(s.n_tup_hot_upd, 0)         AS hot_updates
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = to_regclass(%(table)s) AND c.relkind IN ('r', 'p');

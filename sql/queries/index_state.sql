-- The live state of one index, looked up by its schema and name (never through search_path):
-- valid/ready flags, its definition, the constraint it backs, and whether a build is running on it.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS index,
       n.nspname                               AS schema,
       t.relname                               AS table,
       i.indisvalid                            AS valid,
       i.indisready                            AS ready,
       pg_get_indexdef(i.indexrelid)           AS indexdef,
       con.conname                             AS constraint_name,
       pg_relation_size(i.indexrelid)          AS bytes,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.index_relid = i.indexrelid) AS build_in_progress
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = %(schema)s AND c.relname = %(name)s;

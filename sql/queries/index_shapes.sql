-- The shape of every valid index: what the redundancy rules (ops/redundancy.py) compare.
-- One row per index; per-key arrays are in key order (key columns first, then INCLUDE columns
-- in `columns`). `columns` holds a column name or an expression as pg_get_indexdef prints it;
-- opclasses and collations are spelled with their schema, `opclass_default` says whether the
-- key uses its type's default operator class for the access method (how a hash key and a btree
-- key on the same column are matched), `collation_default` whether it sorts with its column's own
-- collation (an expression's key counts as default); `options` are pg_index.indoption bits (1 DESC, 2 NULLS FIRST).
-- Run it by hand with psql to see what the rules see (%(schemas)s: the app's schemas, NULL for all).
SELECT n.nspname                                                    AS schema,
       t.relname                                                    AS table,
       c.relname                                                    AS index,
       format('%%I.%%I', n.nspname, c.relname)                        AS qualified,
       format('%%I.%%I', n.nspname, t.relname)                        AS qualified_table,
       i.indexrelid::bigint                                         AS oid,
       am.amname                                                    AS method,
       i.indisunique                                                AS is_unique,
       i.indisprimary                                               AS is_primary,
       coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,  -- PostgreSQL 15+
       i.indnkeyatts                                                AS nkeys,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnatts) AS k ORDER BY k)   AS columns,
       ARRAY(SELECT format('%%I.%%I', ocn.nspname, oc.opcname)
             FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS u(opc, k)
             JOIN pg_opclass oc ON oc.oid = u.opc
             JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
             ORDER BY u.k)                                          AS opclasses,
       ARRAY(SELECT oc.opcdefault
             FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS u(opc, k)
             JOIN pg_opclass oc ON oc.oid = u.opc
             ORDER BY u.k)                                          AS opclass_default,
       ARRAY(SELECT CASE WHEN col.oid IS NULL THEN '' ELSE format('%%I.%%I', coln.nspname, col.collname) END
             FROM unnest(i.indcollation::oid[]) WITH ORDINALITY AS u(coll, k)
             LEFT JOIN pg_collation col ON col.oid = u.coll
             LEFT JOIN pg_namespace coln ON coln.oid = col.collnamespace
             ORDER BY u.k)                                          AS collations,
       ARRAY(SELECT u.coll = coalesce(a.attcollation, u.coll)
             FROM unnest(i.indcollation::oid[]) WITH ORDINALITY AS u(coll, k)
             LEFT JOIN pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = (i.indkey::int2[])[u.k - 1] AND a.attnum > 0
             ORDER BY u.k)                                          AS collation_default,
       ARRAY(SELECT unnest(i.indoption::int2[]))                    AS options,
       pg_get_expr(i.indpred, i.indrelid, true)                     AS predicate,
       con.conname                                                  AS constraint_name,
       pg_relation_size(i.indexrelid)                               AS bytes,
       pg_get_indexdef(i.indexrelid)                                AS definition
FROM pg_index i
JOIN pg_class c     ON c.oid = i.indexrelid
JOIN pg_class t     ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am       ON am.oid = c.relam
LEFT JOIN pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indisvalid AND i.indisready AND i.indislive
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
  AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY (%(schemas)s::text[]))  -- the app's schemas; NULL: all
ORDER BY n.nspname, t.relname, c.relname;

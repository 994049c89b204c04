-- Foreign keys that no valid index leads with (after postgres_dba i3): every delete or key update
-- of a parent row makes the RI trigger scan the child table for these columns. An index "leads
-- with" the key when its first n key columns are the key's n columns, in any order, with no
-- predicate and no expression among them.
SELECT cn.nspname                                   AS schema,
       cl.relname                                   AS table,
       format('%%I.%%I', cn.nspname, cl.relname)      AS qualified_table,
       con.conname                                  AS constraint_name,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)                        AS columns,
       pn.nspname                                   AS parent_schema,
       pl.relname                                   AS parent_table,
       format('%%I.%%I', pn.nspname, pl.relname)      AS qualified_parent,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord)                        AS parent_columns,
       CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
                            WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END AS on_delete,
       cl.reltuples::bigint                         AS child_rows
FROM pg_constraint con
JOIN pg_class cl     ON cl.oid = con.conrelid
JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl     ON pl.oid = con.confrelid
JOIN pg_namespace pn ON pn.oid = pl.relnamespace
WHERE con.contype = 'f'
  AND cn.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (%(schemas)s::text[] IS NULL OR cn.nspname = ANY (%(schemas)s::text[]))  -- the app's schemas; NULL: all
  AND NOT EXISTS (
        SELECT 1
        FROM pg_index i
        WHERE i.indrelid = con.conrelid
          AND i.indisvalid
          AND i.indpred IS NULL
          AND i.indnkeyatts >= cardinality(con.conkey)
          AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
          AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)
ORDER BY cn.nspname, cl.relname, con.conname;

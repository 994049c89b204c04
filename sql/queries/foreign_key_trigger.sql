-- The foreign key behind a referential-integrity trigger that EXPLAIN ANALYZE reports (ops playbook slow-query):
-- the referencing table and columns, and whether a valid index leads with those columns (in any order), which
-- is what the trigger's lookup of the referencing rows needs.
SELECT c.conname                          AS constraint_name,
       n.nspname                          AS schema,
       r.relname                          AS relname,
       quote_ident(n.nspname) || '.' || quote_ident(r.relname) AS qualified,
       ARRAY(SELECT a.attname::text
             FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.i)                AS columns,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
               WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
                 AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                 AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey) AS indexed
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_constraint c ON c.oid = t.tgconstraint AND c.contype = 'f'
JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
WHERE t.tgname = %(trigger)s;

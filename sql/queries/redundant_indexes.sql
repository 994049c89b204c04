-- Redundant indexes (after PgHero's duplicate_indexes): a valid index whose key columns are a
-- leading prefix of another valid index on the same table, with the same access method, operator
-- classes, collations, sort options, expressions and predicate. A unique index counts as
-- redundant only beside another unique index on exactly the same keys. An exact duplicate is
-- reported once: the weaker one (not unique / not backing a constraint / newer). An index that
-- backs a constraint (e.g. a primary key) is never reported: it is the one that stays. Only the app's
-- schemas (%(schemas)s).
WITH ix AS (
    SELECT i.indexrelid,
           i.indrelid,
           c.relam,
           n.nspname                                         AS schema,
           t.relname                                         AS table,
           c.relname                                         AS index,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
           i.indisunique                                     AS is_unique,
           i.indnkeyatts                                     AS nkeys,
           (i.indkey::int2[])[0:i.indnkeyatts - 1]           AS keys,        -- slices are 1-based
           (i.indclass::oid[])[0:i.indnkeyatts - 1]          AS opclasses,
           (i.indcollation::oid[])[0:i.indnkeyatts - 1]      AS collations,
           (i.indoption::int2[])[0:i.indnkeyatts - 1]        AS options,
           pg_get_expr(i.indexprs, i.indrelid)               AS exprs,
           pg_get_expr(i.indpred, i.indrelid)                AS pred,
           EXISTS (SELECT 1 FROM pg_constraint con
                   WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                     AND con.contype IN ('p', 'u', 'x')) AS backs_constraint,
           pg_relation_size(i.indexrelid)                    AS bytes,
           pg_get_indexdef(i.indexrelid)                     AS definition
    FROM pg_index i
    JOIN pg_class c     ON c.oid = i.indexrelid
    JOIN pg_class t     ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisvalid AND i.indisready
      AND n.nspname = ANY (%(schemas)s::text[])
)
SELECT a.schema, a.table, a.index, a.qualified, a.bytes, a.definition,
       b.index      AS covered_by,
       b.qualified  AS covered_by_qualified,
       b.definition AS covered_by_definition,
       a.nkeys = b.nkeys AS exact_duplicate
FROM ix a
JOIN ix b
  ON b.indrelid = a.indrelid
 AND b.indexrelid <> a.indexrelid
 AND b.relam = a.relam
 AND b.nkeys >= a.nkeys
 AND b.keys[1:a.nkeys]       = a.keys
 AND b.opclasses[1:a.nkeys]  = a.opclasses
 AND b.collations[1:a.nkeys] = a.collations
 AND b.options[1:a.nkeys]    = a.options
 AND b.exprs IS NOT DISTINCT FROM a.exprs
 AND b.pred  IS NOT DISTINCT FROM a.pred
WHERE NOT a.backs_constraint
  AND (NOT a.is_unique OR (b.is_unique AND b.nkeys = a.nkeys))
  -- of two exact duplicates report only the weaker: not unique, then not constraint-backed, then newer
  AND (a.nkeys < b.nkeys
       OR (a.is_unique, a.backs_constraint, -a.indexrelid::bigint)
        < (b.is_unique, b.backs_constraint, -b.indexrelid::bigint))
ORDER BY a.schema, a.table, a.index, b.nkeys, b.index;

-- User-defined types a statement reaches (ops/safety.py): the functions that read and write their values,
-- a domain's base type and CHECK constraints (run when a value is coerced to the domain), a range's functions.
SELECT t.oid,
       quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS name,
       t.typbasetype        AS base_type,
       array_remove(ARRAY[t.typinput::oid, t.typoutput::oid, t.typreceive::oid, t.typsend::oid, t.typmodin::oid,
                          t.typmodout::oid, t.typanalyze::oid, t.typsubscript::oid,
                          r.rngcanonical::oid, r.rngsubdiff::oid], 0::oid) AS functions,
       ARRAY(SELECT c.conbin::text FROM pg_catalog.pg_constraint c
             WHERE c.contypid = t.oid AND c.conbin IS NOT NULL) AS checks,
       pg_catalog.pg_get_expr(t.typdefaultbin, 0) IS NOT NULL AS has_default,
       t.typdefaultbin::text AS default_tree
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
WHERE t.oid = ANY (%(oids)s::oid[]) AND t.oid >= 16384;

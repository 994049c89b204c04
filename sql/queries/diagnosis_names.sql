-- Name resolution without the server's parser (ops/safety.py falls back to it on a read-only server):
-- every function, operator, cast function and (user-defined) type a name can mean in the schema given or on
-- the search_path,
-- and the relation a (quoted, maybe qualified) name resolves to.
WITH visible AS (
    SELECT n.oid
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname = %(schema)s OR (%(schema)s IS NULL AND n.nspname = ANY (pg_catalog.current_schemas(true)))
)
SELECT 'function' AS kind, p.oid
FROM pg_catalog.pg_proc p
WHERE %(what)s = 'function' AND p.proname = %(name)s AND p.pronamespace IN (SELECT oid FROM visible)
UNION ALL
SELECT 'operator', o.oid
FROM pg_catalog.pg_operator o
WHERE %(what)s = 'operator' AND o.oprname = %(name)s AND o.oprnamespace IN (SELECT oid FROM visible)
UNION ALL
SELECT 'function', c.castfunc
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
WHERE %(what)s = 'cast' AND t.typname = %(name)s AND t.typnamespace IN (SELECT oid FROM visible) AND c.castfunc <> 0
UNION ALL
SELECT 'type', t.oid
FROM pg_catalog.pg_type t
WHERE %(what)s = 'cast' AND t.typname = %(name)s AND t.typnamespace IN (SELECT oid FROM visible) AND t.oid >= 16384
UNION ALL
SELECT 'relation', pg_catalog.to_regclass(%(name)s)::oid
WHERE %(what)s = 'relation' AND pg_catalog.to_regclass(%(name)s) IS NOT NULL;

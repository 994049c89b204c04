-- Name resolution without the server's parser (ops/safety.py falls back to it on a read-only server):
-- every function, operator or cast target a name can mean in the schema given or on the search_path,
-- and the relation a (quoted, maybe qualified) name resolves to.
SELECT 'function' AS kind, p.oid
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = %(name)s
  AND (n.nspname = %(schema)s OR (%(schema)s IS NULL AND n.nspname = ANY (pg_catalog.current_schemas(true))))
  AND %(what)s = 'function'
UNION ALL
SELECT 'operator', o.oid
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE o.oprname = %(name)s
  AND (n.nspname = %(schema)s OR (%(schema)s IS NULL AND n.nspname = ANY (pg_catalog.current_schemas(true))))
  AND %(what)s = 'operator'
UNION ALL
SELECT 'function', c.castfunc
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = %(name)s AND c.castfunc <> 0
  AND (n.nspname = %(schema)s OR (%(schema)s IS NULL AND n.nspname = ANY (pg_catalog.current_schemas(true))))
  AND %(what)s = 'cast'
UNION ALL
SELECT 'relation', pg_catalog.to_regclass(%(name)s)::oid
WHERE %(what)s = 'relation' AND pg_catalog.to_regclass(%(name)s) IS NOT NULL;

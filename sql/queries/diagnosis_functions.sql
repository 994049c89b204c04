-- The functions a statement reaches, as the diagnosis safety check (ops/safety.py) judges them.
-- built_in: created by initdb in pg_catalog (oid below FirstNormalObjectId, 16384), so it runs no user code.
-- volatility: i immutable, s stable (the planner may run both while planning), v volatile.
SELECT p.oid,
       CASE WHEN n.nspname = 'pg_catalog' THEN p.oid::regprocedure::text
            ELSE quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')'
       END                                             AS signature,
       n.nspname                                       AS schema,
       p.proname                                       AS name,
       (p.oid < 16384 AND n.nspname = 'pg_catalog')    AS built_in,
       l.lanname                                       AS language,
       p.provolatile                                   AS volatility,
       p.prosecdef                                     AS security_definer,
       p.prokind                                       AS kind
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.oid = ANY (%(oids)s::oid[]);

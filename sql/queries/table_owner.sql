-- Who owns each of the given tables (parallel arrays of schema and table names), and whether the
-- current role has the owner's rights directly or through inherited membership: CREATE INDEX,
-- REINDEX and DROP INDEX need them before PostgreSQL 17; ANALYZE also lets the database owner.
-- A table that does not exist is left out.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)   AS qualified,
       pg_get_userbyid(c.relowner)                               AS owner,
       pg_has_role(c.relowner, 'USAGE')                          AS may_maintain,
       pg_has_role(c.relowner, 'USAGE')
         OR pg_has_role((SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'USAGE')
                                                                 AS may_analyze
FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
JOIN pg_namespace n ON n.nspname = want.schema
JOIN pg_class c     ON c.relnamespace = n.oid AND c.relname = want.name
ORDER BY 1;

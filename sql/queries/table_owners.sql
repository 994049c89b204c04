-- The roles that own tables in one schema, and whether each is a superuser: `ops roles apply` makes
-- s10_maintenance a member of each (REINDEX and CREATE INDEX need the owner's rights), never of a superuser.
SELECT DISTINCT r.rolname AS owner, r.rolsuper AS superuser
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_roles r     ON r.oid = c.relowner
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'm')
ORDER BY 1;

-- The roles that own tables in one schema, and whether each is a superuser: `ops roles apply` makes
-- s10_maintenance a member of each (REINDEX and CREATE INDEX need the owner's rights), never of a superuser.
-- The ledger (ops_migrations in the ledger's schema) is ops's own table, not the app's: left out.
SELECT DISTINCT r.rolname AS owner, r.rolsuper AS superuser
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_roles r     ON r.oid = c.relowner
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'm')
  AND NOT (n.nspname = %(ledger_schema)s AND c.relname = 'ops_migrations')  -- ours, not the app's
ORDER BY 1;

-- A named constraint on a table (looked up by schema and table name) and the index it uses.
SELECT con.conname AS constraint_name, con.contype, ci.relname AS index
FROM pg_constraint con
JOIN pg_class t     ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class ci ON ci.oid = con.conindid
WHERE n.nspname = %(schema)s AND t.relname = %(table)s AND con.conname = %(name)s;

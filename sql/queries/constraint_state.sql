-- A named constraint on a table and the index it uses.
SELECT con.conname AS constraint_name, con.contype, con.conindid::regclass::text AS index
FROM pg_constraint con
WHERE con.conrelid = to_regclass(%(table)s) AND con.conname = %(name)s;

-- The column names of one table (name resolved through search_path): `ops playbook slow-query` uses them to
-- place unqualified columns of a join on the right table.
SELECT a.attname AS column
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

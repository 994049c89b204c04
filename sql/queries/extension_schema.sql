-- The schema an extension is installed in (pg_extension.extnamespace), so its objects are
-- called by their qualified names and never found through search_path. No row: not installed.
SELECT n.nspname AS schema, e.extversion AS version
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = %(name)s;

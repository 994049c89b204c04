-- Whether an extension is installed in this database and available on the server, readable by
-- any role (extension_state.sql also reads shared_preload_libraries, which needs pg_read_all_settings).
SELECT w.want AS name, e.installed_version, e.default_version IS NOT NULL AS available
FROM (SELECT %(name)s::text AS want) AS w
LEFT JOIN pg_available_extensions e ON e.name = w.want;

-- Whether an extension is installed in this database (installed_version), available on the server
-- (available), and whether its library is in shared_preload_libraries: e.g. hypopg or pg_stat_statements.
SELECT w.want                         AS name,
       e.installed_version,
       e.default_version IS NOT NULL  AS available,
       w.want = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded
FROM (SELECT %(name)s::text AS want) AS w
LEFT JOIN pg_available_extensions e ON e.name = w.want;

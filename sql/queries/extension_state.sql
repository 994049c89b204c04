-- Whether an extension is installed in this database (installed_version), available on the server
-- (available), the schema it is installed in, and whether its library is in shared_preload_libraries (NULL
-- when this role may not read that setting: pg_settings hides it without pg_read_all_settings): e.g. hypopg
-- or pg_stat_statements.
SELECT w.want                         AS name,
       e.installed_version,
       e.default_version IS NOT NULL  AS available,
       (SELECT n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
        WHERE x.extname = w.want)     AS schema,
       w.want = ANY (string_to_array(replace((SELECT s.setting FROM pg_settings s
                                              WHERE s.name = 'shared_preload_libraries'), ' ', ''), ',')) AS preloaded
FROM (SELECT %(name)s::text AS want) AS w
LEFT JOIN pg_available_extensions e ON e.name = w.want;

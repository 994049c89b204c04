-- Whether an extension is installed in this database (installed_version) and in which schema (found
-- through pg_extension.extnamespace, never assumed to be public), available on the server (available),
-- and whether its library is in shared_preload_libraries: e.g. hypopg, pgstattuple or pg_stat_statements.
SELECT w.want                         AS name,
       e.installed_version,
       n.nspname                      AS schema,
       e.default_version IS NOT NULL  AS available,
       -- reading shared_preload_libraries needs pg_read_all_settings: NULL (unknown) without it, not an error
       CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
            THEN w.want = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
       END                            AS preloaded
FROM (SELECT %(name)s::text AS want) AS w
LEFT JOIN pg_available_extensions e ON e.name = w.want
LEFT JOIN pg_extension x            ON x.extname = w.want
LEFT JOIN pg_namespace n            ON n.oid = x.extnamespace;

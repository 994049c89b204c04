-- amcheck in this database: whether the server has it (available), the schema it is installed in
-- (NULL when it is not: CREATE EXTENSION amcheck), and whether the current role may call
-- bt_index_check(regclass, boolean) (amcheck revokes it from PUBLIC: a superuser GRANTs it).
SELECT a.name IS NOT NULL                          AS available,
       n.nspname                                   AS schema,
       e.extversion                                AS version,
       current_user                                AS role,
       pg_catalog.quote_ident(current_user)        AS role_sql,
       pg_catalog.quote_ident(n.nspname) || '.bt_index_check' AS function_sql,
       CASE WHEN n.nspname IS NOT NULL THEN
            pg_catalog.has_function_privilege(
                pg_catalog.format('%I.bt_index_check(regclass, boolean)', n.nspname), 'EXECUTE')
       END                                         AS can_execute
FROM (SELECT 1) AS one
LEFT JOIN pg_catalog.pg_available_extensions AS a ON a.name = 'amcheck'
LEFT JOIN pg_catalog.pg_extension AS e ON e.extname = 'amcheck'
LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace;

-- The s10 group roles as they are: whether each exists, its attributes, and what it may do through
-- membership (superuser, replication and signalling other backends must stay with s10_diagnosis false).
SELECT w.role,
       r.oid IS NOT NULL                                                AS exists,
       coalesce(r.rolsuper, false)                                      AS superuser,
       coalesce(r.rolreplication, false)                                AS replication,
       coalesce(r.rolbypassrls, false)                                  AS bypassrls,
       coalesce(r.rolcanlogin, false)                                   AS login,
       r.oid IS NOT NULL AND pg_has_role(r.oid, 'pg_signal_backend', 'USAGE') AS signal_backend,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1)                          AS member_of
FROM unnest(%(roles)s::text[]) AS w(role)
LEFT JOIN pg_roles r ON r.rolname = w.role
ORDER BY w.role;

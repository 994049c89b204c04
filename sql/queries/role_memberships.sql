-- Whether a login role exists, and which of the named group roles it is a direct member of
-- (ops provision --grant-to). One row with groupname NULL when it is in none of them.
SELECT r.rolname IS NOT NULL AS role_exists, g.rolname AS groupname
FROM (SELECT %(role)s::text AS want) AS w
LEFT JOIN pg_roles r ON r.rolname = w.want
LEFT JOIN pg_auth_members m ON m.member = r.oid
LEFT JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = ANY (%(groups)s::text[]);

-- Whether this session may switch to the diagnosis role, and whether that role is really least-privileged:
-- no superuser, no replication, no BYPASSRLS, not a member of pg_signal_backend or of the roles that reach
-- the server's files or programs (ops/safety.py). search_path: the schemas this session resolves names in now
-- (its own "$user" expanded), which the diagnosis keeps after switching role, so that the statement means
-- under the role what the safety check resolved.
SELECT r.rolname                                                                    AS role,
       pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')                        AS can_switch,
       r.rolsuper                                                                   AS superuser,
       r.rolreplication                                                             AS replication,
       r.rolbypassrls                                                               AS bypassrls,
       ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_roles g
             WHERE g.rolname IN ('pg_signal_backend', 'pg_read_server_files', 'pg_write_server_files',
                                 'pg_execute_server_program', 'pg_checkpoint')
               AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER'))                  AS powerful_memberships,
       pg_catalog.current_schemas(false)::text[]                                    AS search_path
FROM pg_catalog.pg_roles r
WHERE r.rolname = %(role)s;

-- Who blocks whom: every session of this database that waits for a lock, and every session it
-- waits for (pg_blocking_pids: the holders of a conflicting lock and the sessions queued ahead of
-- it), one row each. blocked_by is empty for a root blocker (it holds locks but waits for none).
-- A pid of 0 in blocked_by is a prepared transaction (see pg_prepared_xacts).
-- wait_s: how long the session has waited for its lock (pg_locks.waitstart); xact_age_s: how old
-- its transaction is; state_age_s: how long it has been in its state (e.g. idle in transaction).
-- Reads pg_stat_activity and pg_locks only: it changes nothing and takes no table lock. Without
-- pg_read_all_stats, other roles' state, query and ages are NULL; who waits, for how long and
-- for whom (pg_locks, pg_blocking_pids) is visible to every role.
WITH waiters AS (
    SELECT a.pid, pg_catalog.pg_blocking_pids(a.pid) AS blocked_by
    FROM pg_catalog.pg_stat_activity AS a
    WHERE a.datname = pg_catalog.current_database()
      AND a.pid <> pg_catalog.pg_backend_pid()
      -- from pg_locks, not wait_event_type: a role without pg_read_all_stats sees other roles'
      -- wait events as NULL, and would be told that nothing waits
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks AS l WHERE l.pid = a.pid AND NOT l.granted)
),
involved AS (
    SELECT w.pid FROM waiters AS w WHERE pg_catalog.cardinality(w.blocked_by) > 0
    UNION
    SELECT b.pid FROM waiters AS w, pg_catalog.unnest(w.blocked_by) AS b(pid)
),
awaited AS (  -- the lock each waiter asks for (the oldest, should there be several)
    SELECT DISTINCT ON (l.pid)
           l.pid, l.locktype, l.mode, l.waitstart, l.database, l.relation
    FROM pg_catalog.pg_locks AS l
    WHERE NOT l.granted
    ORDER BY l.pid, l.waitstart
)
SELECT i.pid,
       coalesce(w.blocked_by, '{}')                                        AS blocked_by,
       a.datname,
       a.usename,
       a.application_name,
       host(a.client_addr)                                                 AS client_addr,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.xact_start,
       extract(epoch FROM pg_catalog.now() - a.xact_start)::float8         AS xact_age_s,
       extract(epoch FROM pg_catalog.now() - a.state_change)::float8       AS state_age_s,
       extract(epoch FROM pg_catalog.now() - a.query_start)::float8        AS query_age_s,
       extract(epoch FROM pg_catalog.now() - l.waitstart)::float8          AS wait_s,
       l.locktype                                                          AS wait_locktype,
       l.mode                                                              AS wait_mode,
       (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
          FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
         WHERE c.oid = l.relation
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d
                              WHERE d.datname = pg_catalog.current_database())) AS wait_relation,
       a.query
FROM involved AS i
LEFT JOIN waiters AS w ON w.pid = i.pid
LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = i.pid
LEFT JOIN awaited AS l ON l.pid = i.pid
ORDER BY i.pid;

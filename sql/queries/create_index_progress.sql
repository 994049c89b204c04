-- Progress of a CREATE INDEX / REINDEX (CONCURRENTLY) run by one backend, and who it waits for.
-- pg_blocking_pids() takes every lock-manager partition lock, so it is only asked while the
-- build has not started ('initializing': waiting for its table lock); in the 'waiting for ...'
-- phases current_locker_pid names the transaction the build waits for, at no cost.
SELECT p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total,
       p.lockers_done, p.lockers_total, p.current_locker_pid,
       CASE WHEN p.phase = 'initializing' THEN pg_blocking_pids(p.pid) ELSE '{}'::int[] END AS blocking_pids
FROM pg_stat_progress_create_index p
WHERE p.pid = %(pid)s;

-- Representative parent keys for measuring a parent DELETE (ops advise --measure-deletes): the most
-- common values of the child's foreign-key column, from the planner's statistics (pg_stats), so the
-- parent rows chosen are the ones with the most child rows, and no table is read to find them.
SELECT v AS value
FROM pg_stats s, unnest(s.most_common_vals::text::text[]) WITH ORDINALITY AS u(v, k)
WHERE s.schemaname = %(schema)s AND s.tablename = %(table)s AND s.attname = %(column)s
ORDER BY u.k
LIMIT %(limit)s;

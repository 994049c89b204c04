-- The relations a statement reads (ops/safety.py): a view's SELECT rule (its body, parsed by the server),
-- the row-level security policies applied when the table has RLS on, and its kind (a foreign table is
-- another server).
SELECT c.oid,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       c.relkind             AS kind,
       ARRAY(SELECT r.ev_action::text FROM pg_catalog.pg_rewrite r
             WHERE r.ev_class = c.oid AND r.ev_type = '1') AS select_rules,
       ARRAY(SELECT concat_ws(' ', p.polqual::text, p.polwithcheck::text) FROM pg_catalog.pg_policy p
             WHERE p.polrelid = c.oid AND c.relrowsecurity) AS policies
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY (%(oids)s::oid[]);

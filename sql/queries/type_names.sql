-- SQL names of types given by oid, in order (e.g. the inferred types of a prepared statement's $n).
SELECT pg_catalog.format_type(t.oid, NULL) AS name
FROM unnest(%(oids)s::oid[]) WITH ORDINALITY AS t(oid, n)
ORDER BY t.n;

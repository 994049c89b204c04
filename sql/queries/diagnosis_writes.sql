-- What runs when a statement writes to a table (ops/safety.py), one row per thing:
--   stage 'plan': the rewriter puts it into the statement itself, so the planner sees it (defaults, rules);
--   stage 'exec': only the executor runs it (triggers, CHECK constraints, index expressions, the partition key,
--                 column domains,
--                 the tables a foreign key's actions write to, partitions and inheritance children).
-- tree: a pg_node_tree the check reads for the functions, operators, types and relations in it.
SELECT 'plan' AS stage, 'the default of ' || a.attname AS what, d.adbin::text AS tree,
       NULL::oid AS function, NULL::oid AS relation, NULL::oid AS type
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = %(rel)s
UNION ALL
SELECT 'plan', 'rule ' || r.rulename, concat_ws(' ', r.ev_qual::text, r.ev_action::text), NULL, NULL, NULL
FROM pg_catalog.pg_rewrite r
WHERE r.ev_class = %(rel)s AND r.ev_type <> '1'
UNION ALL
SELECT 'exec', 'trigger ' || t.tgname, t.tgqual::text, t.tgfoid, NULL, NULL
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %(rel)s AND t.tgenabled <> 'D'
UNION ALL
SELECT 'exec', 'constraint ' || c.conname, c.conbin::text, NULL, NULL, NULL
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = %(rel)s AND c.conbin IS NOT NULL
UNION ALL
SELECT 'exec', 'index ' || i.indexrelid::regclass::text, concat_ws(' ', i.indexprs::text, i.indpred::text), NULL, NULL, NULL
FROM pg_catalog.pg_index i
WHERE i.indrelid = %(rel)s AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
UNION ALL
SELECT 'exec', 'the partition key', p.partexprs::text, NULL, NULL, NULL
FROM pg_catalog.pg_partitioned_table p
WHERE p.partrelid = %(rel)s AND p.partexprs IS NOT NULL
UNION ALL
SELECT 'exec', 'the type of ' || a.attname, NULL, NULL, NULL, a.atttypid
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %(rel)s AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384
UNION ALL
SELECT 'identity', 'the identity column ' || a.attname, NULL, NULL, NULL, NULL
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %(rel)s AND a.attidentity <> '' AND NOT a.attisdropped
UNION ALL
SELECT 'exec', 'foreign key ' || c.conname || ' of ' || c.conrelid::regclass::text, NULL, NULL, c.conrelid, NULL
FROM pg_catalog.pg_constraint c
WHERE c.confrelid = %(rel)s AND c.contype = 'f' AND c.conrelid <> %(rel)s
UNION ALL
SELECT 'exec', 'partition ' || i.inhrelid::regclass::text, NULL, NULL, i.inhrelid, NULL
FROM pg_catalog.pg_inherits i
WHERE i.inhparent = %(rel)s;

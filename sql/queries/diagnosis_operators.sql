-- The operators a statement reaches and the functions behind them: oprcode runs for each row,
-- oprrest and oprjoin are the estimators the planner itself calls (ops/safety.py).
SELECT o.oid,
       o.oid::regoperator::text AS signature,
       ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid] AS functions
FROM pg_catalog.pg_operator o
WHERE o.oid = ANY (%(oids)s::oid[]);

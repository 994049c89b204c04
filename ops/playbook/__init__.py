"""On-call playbooks: one command per symptom, safe against production, with the fix spelled out.

- ``slow_query``: EXPLAIN a statement without letting it change data; name the cause; suggest an index
  and prove it with a hypothetical index (hypopg) when available.
- ``top_queries``: the heaviest statements from pg_stat_statements.
- ``cors_check``: send a real preflight and a real request; grade the answer as a browser would.
"""

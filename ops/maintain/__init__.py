"""ops maintain: the scheduled maintenance of the primary's indexes and statistics.

Each report is a plain function returning data (``usage.findings``, ``bloat.findings``,
``analyze.findings``, ``reindex.plan``) so the on-call playbooks reuse them; every finding carries
the command that fixes it. The actions (``reindex.run``, ``analyze.run``) do only the work worth
doing, online, under the database advisory lock ``maintain`` so two runs never overlap.
"""

LOCK_NAME = "maintain"

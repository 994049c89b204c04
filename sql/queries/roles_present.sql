-- Which of the named roles exist (ops provision: the s10 group roles).
SELECT rolname FROM pg_roles WHERE rolname = ANY (%(names)s::text[]);

"""The embedded local stack for the demo, the tests and the benchmarks.

Throwaway PostgreSQL clusters (``pg``), the Nginx runner (``nginx``), the stand-in app
(``standin``), the local web stack (``webstack``), the browser helper (``browser``) and the
local environment behind ``make demo`` (``env``). The product (``ops`` commands, the deploy)
never imports this package.
"""

"""Debian packages and services, through pyinfra's own operations (systemd on hosts, init scripts in containers)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt


@operation()
def debian_packages(packages: list[str]):
    """
    Install the Debian packages that are missing (no ``apt-get update`` when none is).

    + packages: Debian package names

    pyinfra's ``apt.packages(update=True)`` refreshes the index on every run, which a second
    deploy would count as a change: the index is refreshed here only when something is missing.
    A failing install fails this host alone, with apt's last line.
    """
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    if not missing:
        host.noop(f"installed: {', '.join(packages)}")
        return
    yield from apt.packages._inner(
        packages=missing,
        update=True,
        no_recommends=True,
    )

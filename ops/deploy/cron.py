"""pyinfra operation for the scheduled maintenance: one crontab file, rendered from settings.

The crontab runs the same ``ops maintain`` commands a person runs, each line wrapped in
``flock -n`` (skips, and says so in the log, while the previous run still holds the lock) on top
of the database advisory lock the commands take themselves. The monthly job is a chain run by
``ops maintain chain`` (REINDEX, ANALYZE, then the amcheck integrity check): each step's own exit
status is logged, and the job fails when any step failed.
"""

from __future__ import annotations

import io
import shlex
from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra.api import operation
from pyinfra.operations import files, server

from ops import TEMPLATES_DIR
from ops.deploy import show_diff_if_changed, text_file
from ops.deploy.packages import debian_packages
from ops.settings import DbSettings, MaintenanceJob, MaintenanceSettings

LOGROTATE_FILE = "/etc/logrotate.d/s10-ops"
SKIPPED = 75  # flock -E: the previous run still holds the lock
#: The monthly integrity check's time budget: it stops on time however big the database.
INTEGRITY_MAX_DURATION = "30m"


@dataclass
class CronLine:
    title: str
    schedule: str
    command: str


def _ops(db: DbSettings, *args: str) -> str:
    return " ".join(shlex.quote(a) for a in (db.ops_bin, "maintain", *args))


def _chain(db: DbSettings, *steps: list[str]) -> str:
    """``ops maintain chain 'ops maintain reindex ...' 'ops maintain analyze ...'``: each step's status logged."""
    return " ".join(
        shlex.quote(a) for a in (db.ops_bin, "maintain", "chain", *(shlex.join(["ops", *s]) for s in steps))
    )


def _metrics(settings: MaintenanceSettings, job: str) -> list[str]:
    return ["--metrics-file", f"{settings.metrics_dir}/s10_maintain_{job}.prom"] if settings.metrics_dir else []


def _wrap(settings: MaintenanceSettings, name: str, job: MaintenanceJob, command: str, label: str = "") -> str:
    """flock + log redirection (+ weekday guard) around one ops command (a chain is one command).

    ``name`` names the lock; ``label`` (default: the name) the job in the log."""
    lock = f"{settings.lock_dir}/s10-ops-maintain-{name}.lock"
    name = label or name
    run = (
        f"flock -n -E {SKIPPED} {lock} {command}; rc=$?; "
        f'[ $rc -ne {SKIPPED} ] || echo "s10-ops {name}: skipped, the previous run still holds {lock}"; '
        f'echo "s10-ops {name}: exit $rc"'
    )
    if settings.log_file == "syslog":
        line = f'{{ echo "s10-ops {name}: start"; {run}; }} 2>&1 | logger -t s10-ops-maintain'
    else:
        line = f'{{ echo "$(date -Is) s10-ops {name}: start"; {run}; }} >> {settings.log_file} 2>&1'
    if job.weekday:
        # '%' ends a command in a crontab: escape it
        line = f'[ "$(date +\\%u)" = {job.weekday} ] && {line}'
    return line


def cron_lines(settings: MaintenanceSettings, db: DbSettings) -> list[CronLine]:
    lines = []
    if settings.usage.enabled:
        replicas = [arg for dsn in settings.replica_dsns for arg in ("--replica", dsn)]
        cmd = _ops(db, "usage", *_metrics(settings, "usage"), *replicas, *settings.usage.options)
        lines.append(
            CronLine(
                "index usage report (weekly)", settings.usage.schedule, _wrap(settings, "usage", settings.usage, cmd)
            )
        )
    if settings.reindex.enabled:
        lock = ["--lock-timeout", str(db.lock_timeout), "--retries", str(db.retries)]
        reindex = ["maintain", "reindex", *lock, *_metrics(settings, "reindex"), *settings.reindex.options]
        analyze = ["maintain", "analyze", *_metrics(settings, "analyze")]
        integrity = ["playbook", "integrity", "--max-duration", INTEGRITY_MAX_DURATION]
        lines.append(
            CronLine(
                "monthly: targeted REINDEX CONCURRENTLY, ANALYZE of stale statistics, amcheck integrity check "
                "(each step's exit status logged; the job fails when one failed)",
                settings.reindex.schedule,
                _wrap(settings, "reindex", settings.reindex, _chain(db, reindex, analyze, integrity), "monthly"),
            )
        )
    if settings.bloat.enabled:
        cmd = _ops(db, "bloat", "--exact", *_metrics(settings, "bloat"), *settings.bloat.options)
        lines.append(
            CronLine(
                "bloat report with pgstatindex (quarterly)",
                settings.bloat.schedule,
                _wrap(settings, "bloat", settings.bloat, cmd),
            )
        )
    return lines


def _env(subdir: str) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR / subdir)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_logrotate(settings: MaintenanceSettings) -> str:
    user = settings.cron_user
    return _env("logrotate").get_template("s10-ops.j2").render(log_file=settings.log_file, user=user, group=user)


def cron_system(settings: MaintenanceSettings) -> None:
    """Where the deploy installs ops (``db_ops_venv``) and the crontab is a system one (``cron_user`` set): cron
    and logrotate from Debian's packages, cron running, the jobs' log rotated."""
    if not settings.cron_user:
        return  # a user crontab file (the embedded default): nothing system-wide to install
    debian_packages(name="cron and logrotate packages", packages=["cron", "logrotate"])
    server.service(name="cron running and enabled", service="cron", running=True, enabled=True)
    if settings.log_file != "syslog":
        text_file(
            name=f"logrotate rule {LOGROTATE_FILE}",
            content=render_logrotate(settings),
            dest=LOGROTATE_FILE,
            mode="644",
        )


def render(settings: MaintenanceSettings, db: DbSettings) -> str:
    """The crontab text for these settings (also used by the tests and ``--dry`` review)."""
    return (
        _env("cron")
        .get_template("s10-maintenance.cron.j2")
        .render(pg_env=sorted(db.pg_env.items()), jobs=cron_lines(settings, db), user=settings.cron_user)
    )


@operation()
def maintenance_cron(settings: MaintenanceSettings, db: DbSettings):
    """
    Install the scheduled ``ops maintain`` jobs on the database primary.

    + settings: validated ``MaintenanceSettings`` (cron_file, cron_user, log_file, lock_dir,
      metrics_dir, and the usage / reindex / bloat jobs)
    + db: validated ``DbSettings`` (ops_bin and the libpq environment, never a password)

    Writes one crontab file (``/etc/cron.d`` format when ``cron_user`` is set, else a user
    crontab, e.g. under ``.local/`` for the local inventory) and the log directory. The file is
    rendered from ``templates/cron/``; an unchanged file is not touched, so a second deploy
    changes nothing.

    **Example:**

    .. code:: python

        maintenance_cron(name="S10 maintenance jobs", settings=maint, db=db)
    """
    content = render(settings, db)
    mode = "644" if settings.cron_user else "600"
    # The diff first: pyinfra stops reading an operation at its first command while it detects changes.
    show_diff_if_changed(settings.cron_file, content)
    # The jobs run as cron_user: their log and metrics directories are theirs.
    owner = settings.cron_user or None
    if settings.log_file != "syslog":
        yield from files.directory._inner(path=settings.log_file.rsplit("/", 1)[0] or "/", present=True, user=owner)
    yield from files.directory._inner(path=settings.lock_dir, present=True)
    if settings.metrics_dir:
        yield from files.directory._inner(path=settings.metrics_dir, present=True, user=owner)
    yield from files.put._inner(src=io.StringIO(content), dest=settings.cron_file, mode=mode)

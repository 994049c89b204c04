"""pyinfra operations for the CORS feature: the Nginx site (checked before reload) and the app's env file.

The files themselves come from :func:`ops.cors.host_plan`, the same code ``ops render`` runs.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, server

from ops.cors import AppSettings, HostPlan, RenderedFile, WebSettings, render_main
from ops.deploy import show_diff, text_file
from ops.deploy.packages import debian_packages

# Candidates, the check wrapper and the previous files wait in web.staging_dir, never beside the
# live files: a main config that includes a whole directory (sites-enabled/*) would load them.
CANDIDATE = ".candidate"
CHECK = ".check"
PREVIOUS = ".previous"


def staged(web: WebSettings, path: str, suffix: str) -> str:
    return posixpath.join(web.staging_dir, posixpath.basename(path) + suffix)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def full_check_command(web: WebSettings) -> str:
    """``nginx -t`` of the configuration Nginx itself loads (the host's main config, or the standalone one)."""
    q = shlex.quote
    if web.main_conf and web.prefix:
        return f"{q(web.nginx_bin)} -t -q -p {q(web.prefix + '/')} -e logs/error.log -c {q(web.main_conf)}"
    return f"{q(web.nginx_bin)} -t -q"


def install_command(web: WebSettings, targets: list[RenderedFile]) -> str:
    """Shell: check the candidates, move them in, check again in place, reload; undo on any failure.

    1. ``nginx -t`` a wrapper main config that includes the candidate site, in a throwaway prefix:
       the live files are not touched yet.
    2. Move the candidates in (keeping the live files as ``.previous``) and ``nginx -t`` the
       configuration Nginx really loads, which catches a clash with the rest of the host's config.
       On failure the previous files go back.
    3. Reload.

    On failure nginx's own message goes to stderr with a non-zero exit, which fails the deploy,
    and the running config stays in place.
    """
    q = shlex.quote
    check = q(staged(web, web.site_path, CHECK))
    cands = [
        (q(staged(web, f.dest, CANDIDATE)), q(f.dest), q(staged(web, f.dest, PREVIOUS)), f"{f.mode:o}") for f in targets
    ]
    kept = "nginx -t rejected the new config; the running config stays in place"
    restore = "; ".join(
        f"if [ -e {prev} ]; then mv -f {prev} {dest}; else rm -f {dest}; fi" for _, dest, prev, _ in cands
    )
    lines = [
        "d=$(mktemp -d) || exit 1",
        'mkdir -p "$d/logs" "$d/temp"',
        f'if ! out=$({q(web.nginx_bin)} -t -q -e stderr -p "$d/" -c {check} 2>&1); then '
        f'rm -rf "$d" {check} {" ".join(c for c, *_ in cands)}; echo "{kept}: $out" >&2; exit 1; fi',
        f'rm -rf "$d" {check}',
        *(f"rm -f {prev}; if [ -e {dest} ]; then cp -p {dest} {prev}; fi" for _, dest, prev, _ in cands),
        *(f"chmod {mode} {cand} && mv -f {cand} {dest} || exit 1" for cand, dest, _, mode in cands),
        f'if ! out=$({full_check_command(web)} 2>&1); then {restore}; echo "{kept}: $out" >&2; exit 1; fi',
        f"rm -f {' '.join(prev for *_, prev, _ in cands)}",
        web.reload_command,
    ]
    return "; ".join(lines)


@operation()
def nginx_site(web: WebSettings, rendered: list[RenderedFile]):
    """
    Install the S10 Nginx site, and the main config of a standalone Nginx, only after ``nginx -t``.

    + web: validated ``WebSettings`` (site_path, main_conf, nginx_bin, reload_command)
    + rendered: the files from ``ops.cors.host_plan`` (kinds ``nginx-site``, ``nginx-main``)

    Compares each file's SHA-256 with the host's copy: nothing to do means no upload, no
    check and no reload. Otherwise uploads candidates beside the live files and runs
    :func:`install_command`: ``nginx -t`` through a wrapper that includes the candidate site,
    then in place (undone on failure), then ``reload_command``. A failing check leaves the
    running config and fails the deploy with nginx's message.

    **Example:**

    .. code:: python

        nginx_site(name="S10 Nginx site", web=plan.web, rendered=plan.files)
    """
    targets = [f for f in rendered if f.kind.startswith("nginx-")]
    changed = [f for f in targets if host.get_fact(Sha256File, path=f.dest) != _sha256(f.content)]
    if not changed:
        host.noop(f"{web.site_path} is up to date")
        return
    if state.config.DIFF:  # --dry / --diff: show each change the way files.put does for the env file
        for f in changed:
            show_diff(f.dest, f.content)
    for f in targets:
        yield FileUploadCommand(StringIO(f.content), staged(web, f.dest, CANDIDATE))
    wrapper = render_main(web, staged(web, web.site_path, CANDIDATE))
    yield FileUploadCommand(StringIO(wrapper), staged(web, web.site_path, CHECK))
    yield StringCommand(install_command(web, targets))


def standalone_dirs(web: WebSettings) -> None:
    """The prefix of a standalone Nginx (the demo): conf, logs, temp, and the site's directory."""
    assert web.prefix is not None
    paths = {posixpath.join(web.prefix, sub) for sub in ("conf", "logs", "temp")}
    paths |= {posixpath.dirname(web.site_path), posixpath.dirname(web.access_log)}
    for path in sorted(paths | {web.prefix}):
        files.directory(name=f"Nginx directory {path}", path=path, mode="755")


def app_env_file(app: AppSettings, rendered: list[RenderedFile]) -> None:
    """The app's CORS env file (mode 0640), then ``restart_command`` only when it changed."""
    env = next(f for f in rendered if f.kind == "app-env")
    put = text_file(
        name=f"App CORS env file {env.dest}",
        content=env.content,
        dest=env.dest,
        mode=f"{env.mode:o}",
        group=app.env_group,
    )
    if app.restart_command:
        server.shell(name="Restart the app (its CORS env changed)", commands=[app.restart_command], _if=put.did_change)


def cors_deployed(plan: HostPlan) -> None:
    """What a web and/or app host gets: the Nginx site and the app's env file, in a safe order.

    Switching to edge, Nginx goes first (it hides the app's CORS headers); otherwise the app goes
    first. Either way no response carries two Access-Control-Allow-Origin headers in between.
    """
    for warning in plan.cors.warnings():
        logger.warning(f"{host.name}: {warning}")
    steps = []
    web, app = plan.web, plan.app
    if web is not None:
        steps.append(lambda: _web(web, plan.files))
    if app is not None:
        steps.append(lambda: app_env_file(app, plan.files))
    for step in steps if plan.cors.mode == "edge" else reversed(steps):
        step()


DEFAULT_SITE = "/etc/nginx/sites-enabled/default"


def system_nginx() -> None:
    """A host's own Nginx (no ``web_prefix``): Debian's package, without its default site, running and enabled."""
    debian_packages(name="Nginx package", packages=["nginx"])
    # Debian's default site listens on port 80 for every name: ours is the host's only site.
    files.link(name=f"Nginx default site {DEFAULT_SITE} removed", path=DEFAULT_SITE, present=False)
    server.service(name="Nginx running and enabled", service="nginx", running=True, enabled=True)


def _web(web: WebSettings, rendered: list[RenderedFile]) -> None:
    if web.prefix:
        standalone_dirs(web)
    else:
        system_nginx()
    files.directory(name=f"Nginx staging directory {web.staging_dir}", path=web.staging_dir, mode="700")
    nginx_site(name="S10 Nginx site (nginx -t before reload)", web=web, rendered=rendered)

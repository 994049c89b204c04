#!/usr/bin/env bash
# Install the Debian packages a make target needs, when missing:
#
#   scripts/system-packages.sh demo     # make demo: PostgreSQL 15 (server, contrib, hypopg), nginx
#   scripts/system-packages.sh test     # make test: the demo's, plus chromium, wrk, openssh-server, prometheus and its exporters,
#                                       # docker.io and mmdebstrap (tests/test_docker_deploy.py, make docker-demo)
#   scripts/system-packages.sh bench    # make bench: the demo's, plus chromium and wrk
#
# Idempotent: does nothing (and needs no network) when everything is there.
#
# The machine's services are left alone: this script never stops, disables or reconfigures a
# service. Debian starts a daemon when its package is installed (nginx, ssh, prometheus...); for
# the packages this script installs, a policy-rc.d that exists only around its own apt-get install
# keeps them from starting (the demo and the tests run their own copies under the repo, on their
# own ports). Debian still enables them for the next boot, as it does for any install: run
# `systemctl disable <service>` yourself if you do not want that.
set -euo pipefail

demo=(postgresql-15 postgresql-contrib-15 postgresql-15-hypopg nginx)
test_only=(chromium wrk openssh-server prometheus prometheus-node-exporter prometheus-postgres-exporter docker.io mmdebstrap)
bench_only=(chromium wrk)

want=()
[ $# -eq 0 ] && set -- test
for target in "$@"; do
  case "$target" in
    demo) want+=("${demo[@]}") ;;
    test) want+=("${demo[@]}" "${test_only[@]}") ;;
    bench) want+=("${demo[@]}" "${bench_only[@]}") ;;
    *) echo "system-packages.sh: unknown target '$target' (demo, test or bench)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in $(printf '%s\n' "${want[@]}" | sort -u); do
  # postgresql-contrib-15 is a virtual name on Debian 12 (contrib ships in postgresql-15): check the files.
  if [ "$pkg" = postgresql-contrib-15 ]; then
    [ -f /usr/share/postgresql/15/extension/pgstattuple.control ] && continue
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run 'make setup' as root, or install them)" >&2
  exit 1
fi

echo "installing Debian packages: ${missing[*]} (their services are not started)"
export DEBIAN_FRONTEND=noninteractive
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d}  # POLICY_RC_D: for tests/test_setup.py only
if [ ! -e "$policy" ]; then  # one the machine has (e.g. a container's) is left as it is
  printf '#!/bin/sh\n# s10-ops scripts/system-packages.sh: no service starts during its apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

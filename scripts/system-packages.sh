#!/usr/bin/env bash
# Install the Debian packages the demo, tests and benchmarks need, when missing.
# Idempotent: does nothing (and needs no network) when everything is there.
set -euo pipefail
want=(nginx chromium openssh-server wrk postgresql-15-hypopg prometheus prometheus-node-exporter prometheus-postgres-exporter postgresql-contrib-15)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# postgresql-contrib-15 is a virtual name on Debian 12 (contrib ships in postgresql-15): check the files.
if [ -f /usr/share/postgresql/15/extension/pgstattuple.control ]; then
  missing=("${missing[@]/postgresql-contrib-15}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run 'make setup' as root, or install them)" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages enable and start services we do not want running on their own.
for svc in nginx ssh prometheus prometheus-node-exporter; do
  (systemctl disable --now "$svc" || service "$svc" stop) >/dev/null 2>&1 || true
done

#!/usr/bin/env bash
# Starts a local PostgreSQL for AdServe — Debian's package, installed if missing — with a role
# `adserve` (password `adserve`, may create databases: the tests make one each) and a database
# `adserve`; prints the store URL for `adserve serve --store` and ADSERVE_TEST_POSTGRES_URL.
# Needs root (apt-get, su postgres). Usage: url=$(bash scripts/postgres-up.sh)
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || [ ! -d /usr/lib/postgresql ]; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=$(pg_lsclusters -h | awk -v v="$version" '$1 == v { print $2; exit }')
if [ -z "$cluster" ]; then
    pg_createcluster "$version" main >&2
    cluster=main
fi
# Room for three nodes' pools and the test suite's temporary stores.
pg_conftool "$version" "$cluster" set max_connections 300 >&2
if pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }' | grep -q online; then
    pg_ctlcluster "$version" "$cluster" restart >&2
else
    pg_ctlcluster "$version" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')
psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -tAc \"$1\""; }
[ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'adserve'")" = 1 ] \
    || psql_admin "CREATE ROLE adserve LOGIN CREATEDB PASSWORD 'adserve'" >&2
[ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'adserve'")" = 1 ] \
    || su postgres -c "createdb -p $port -O adserve adserve" >&2
echo "postgres://adserve:adserve@127.0.0.1:$port/adserve"

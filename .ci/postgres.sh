#!/usr/bin/env bash
# Starts a PostgreSQL server for the PostgreSQL store's tests (src/store/postgres.rs,
# tests/it/postgres.rs) and prints the variables that point them at it:
#   eval "$(.ci/postgres.sh)"    # then cargo test --all-targets
# Installs Debian's postgresql when missing, starts its cluster, and makes a role and database
# `verbatim` (password `verbatim`, may create databases: the replica test makes its own). Needs root
# or sudo.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main" || $SUDO pg_createcluster "$version" main >&2
$SUDO pg_ctlcluster "$version" main status >/dev/null 2>&1 || $SUDO pg_ctlcluster "$version" main start >&2
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
as_postgres() { if [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
as_postgres psql -p "$port" -qv ON_ERROR_STOP=1 >&2 <<'SQL'
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'verbatim') THEN
        CREATE ROLE verbatim LOGIN CREATEDB PASSWORD 'verbatim';
    END IF;
END $$;
SQL
as_postgres psql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'verbatim'" | grep -q 1 \
    || as_postgres createdb -p "$port" -O verbatim verbatim >&2
echo "export VERBATIM_TEST_POSTGRES=postgres://verbatim:verbatim@127.0.0.1:$port/verbatim"

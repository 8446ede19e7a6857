#!/usr/bin/env bash
# Starts a PostgreSQL server for the PostgreSQL store's tests (src/store/postgres.rs,
# tests/it/postgres.rs) and prints the variables that point them at it:
#   eval "$(.ci/postgres.sh)"    # then cargo test --all-targets
# Installs Debian's postgresql when missing, starts its cluster, and makes a role and database
# `verbatim` (password `verbatim`, may create databases: the replica test makes its own), and turns
# on TLS with a test CA of its own (VERBATIM_TEST_POSTGRES_CA), with a role `verbatim_cert` that
# logs in by client certificate only (VERBATIM_TEST_POSTGRES_CLIENT_CERT / _KEY). Needs root or sudo.
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

# TLS (`sslmode=require`, tested in src/store/postgres.rs): a test CA of our own, a server
# certificate for 127.0.0.1 and a client certificate for the role verbatim_cert, both signed by it,
# made once; the tests trust the CA through sslrootcert and log in with sslcert / sslkey.
tls=/var/lib/postgresql/verbatim-tls
if [ ! -s "$tls/client.pem" ]; then
    command -v openssl >/dev/null || { $SUDO apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >&2; }
    work=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Verbatim test CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/ext"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 3650 \
        -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=verbatim_cert" -keyout "$work/client.key" -out "$work/client.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$work/client.ext"
    openssl x509 -req -in "$work/client.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 3650 \
        -extfile "$work/client.ext" -out "$work/client.pem" 2>/dev/null
    $SUDO install -d -o postgres -g postgres -m 755 "$tls"
    $SUDO install -o postgres -g postgres -m 600 "$work/server.key" "$tls/server.key"
    $SUDO install -o postgres -g postgres -m 644 "$work/server.pem" "$tls/server.pem"
    $SUDO install -o postgres -g postgres -m 644 "$work/ca.pem" "$tls/ca.pem"
    # The client's key stays with the user running the tests (libpq wants 0600 too).
    $SUDO install -o "$(id -u)" -g "$(id -g)" -m 600 "$work/client.key" "$tls/client.key"
    $SUDO install -o "$(id -u)" -g "$(id -g)" -m 644 "$work/client.pem" "$tls/client.pem"
    rm -rf "$work"
fi
as_postgres psql -p "$port" -qv ON_ERROR_STOP=1 >&2 <<'SQL'
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'verbatim_cert') THEN
        CREATE ROLE verbatim_cert LOGIN;
    END IF;
END $$;
SQL
hba=$(as_postgres psql -p "$port" -tAc "SHOW hba_file")
rule="hostssl all verbatim_cert 127.0.0.1/32 cert"
if ! $SUDO grep -qxF "$rule" "$hba"; then
    $SUDO sed -i "1i $rule" "$hba"
fi
as_postgres psql -p "$port" -qv ON_ERROR_STOP=1 -c "ALTER SYSTEM SET ssl = on" \
    -c "ALTER SYSTEM SET ssl_cert_file = '$tls/server.pem'" -c "ALTER SYSTEM SET ssl_key_file = '$tls/server.key'" \
    -c "ALTER SYSTEM SET ssl_ca_file = '$tls/ca.pem'" -c "SELECT pg_reload_conf()" >/dev/null

echo "export VERBATIM_TEST_POSTGRES=postgres://verbatim:verbatim@127.0.0.1:$port/verbatim"
echo "export VERBATIM_TEST_POSTGRES_CA=$tls/ca.pem"
echo "export VERBATIM_TEST_POSTGRES_CLIENT_CERT=$tls/client.pem"
echo "export VERBATIM_TEST_POSTGRES_CLIENT_KEY=$tls/client.key"

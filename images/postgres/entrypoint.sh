#!/bin/sh
# PostgreSQL 15 as whatever non-root user the pod runs as. On the first start: initdb into $PGDATA (the
# superuser's password from $CREDENTIALS/postgres). On every start, through a setup server on a private
# socket that only the data directory's owner may use (peer authentication, no password): the superuser's
# password set to $CREDENTIALS/postgres, and a role and a database named after each other file of
# $CREDENTIALS (the client's password), created or updated — so credentials made anew (a lost Secret) are
# taken instead of locking the server out of its own data —, then the server itself with the container's
# arguments (e.g. `-c shared_buffers=16MB`), stopped fast on SIGTERM.
# Who may connect (pg_hba): the superuser only over the local socket; a client only to its own database.
# On the simulator's host runtime the same script runs with PGBIN (PostgreSQL's programs) and TMPDIR given.
set -eu
BIN=${PGBIN:-/usr/lib/postgresql/15/bin}
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${CREDENTIALS:=/etc/database/credentials}"
SOCKETS=${TMPDIR:-/tmp}
export PGDATA

if [ ! -r "$CREDENTIALS/postgres" ]; then
    echo "no superuser password at $CREDENTIALS/postgres — fix: mount the database-credentials Secret there" >&2
    exit 1
fi

# initdb and postgres look up their user's name: give the pod's uid one (nss_wrapper, no write to /etc)
if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
    { grep -v '^postgres:' /etc/passwd; echo "postgres:x:$(id -u):$(id -g):PostgreSQL:/var/lib/postgresql:/usr/sbin/nologin"; } > "$SOCKETS/passwd"
    export LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$SOCKETS/passwd" NSS_WRAPPER_GROUP=/etc/group
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C --auth=scram-sha-256 --pwfile="$CREDENTIALS/postgres"
    cat > "$PGDATA/pg_hba.conf" <<'EOF'
local all      all      scram-sha-256
host  all      postgres all reject
host  sameuser all      all scram-sha-256
EOF
fi

echo "local all postgres peer map=owner" > "$SOCKETS/setup-hba.conf"
echo "owner $(id -un) postgres" > "$SOCKETS/setup-ident.conf"
"$BIN/pg_ctl" -D "$PGDATA" -w -t 120 -l "$SOCKETS/setup.log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$SOCKETS -c hba_file=$SOCKETS/setup-hba.conf -c ident_file=$SOCKETS/setup-ident.conf" start \
    || { cat "$SOCKETS/setup.log" >&2; exit 1; }
"$BIN/psql" -h "$SOCKETS" -U postgres -d postgres -q -v ON_ERROR_STOP=1 -v pw="$(cat "$CREDENTIALS/postgres")" <<'SQL'
ALTER ROLE postgres WITH PASSWORD :'pw';
SQL
for f in "$CREDENTIALS"/*; do
    client=$(basename "$f")
    [ "$client" = postgres ] && continue
    case "$client" in
        *[!a-z0-9_]*) echo "skipping credential '$client': a client is named [a-z0-9_]+" >&2; continue ;;
    esac
    "$BIN/psql" -h "$SOCKETS" -U postgres -d postgres -q -v ON_ERROR_STOP=1 -v name="$client" -v pw="$(cat "$f")" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    echo "client $client: role and database ready"
done
"$BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null

# The kubelet stops a pod with SIGTERM, which postgres reads as a "smart" shutdown (wait for every client
# to leave, so until the kill after the grace period): pass it on as SIGINT, a fast shutdown (clients cut,
# a checkpoint, a clean stop in a second).
"$BIN/postgres" -c listen_addresses='*' -c unix_socket_directories="$SOCKETS" "$@" &
server=$!
trap 'kill -INT "$server"' TERM INT
status=0
wait "$server" || status=$?
if kill -0 "$server" 2>/dev/null; then  # the trap interrupted `wait`: wait for the shutdown itself
    status=0
    wait "$server" || status=$?
fi
exit "$status"

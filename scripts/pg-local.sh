#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for tests and development: Debian's `postgresql`
# (installed when missing), a cluster of its own in /tmp/darkroom-pg-$PG_PORT (outside the
# checkout, which the `postgres` user may not be able to enter), run as that user (initdb
# refuses root) when this script runs as root.
#   scripts/pg-local.sh start   # starts it (if not running) and waits until it answers
#   scripts/pg-local.sh stop    # stops the cluster it started
#   scripts/pg-local.sh url     # prints the URL of its database
# PostgreSQL on 127.0.0.1:$PG_PORT (default 15432), database darkroom_test, user
# darkroom (password darkroom, scram-sha-256): postgres://darkroom:darkroom@127.0.0.1:15432/darkroom_test
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PG_PORT:-15432}
DIR=${PG_DIR:-/tmp/darkroom-pg-$PORT}
DATA=$DIR/data
DB=darkroom_test
URL="postgres://darkroom:darkroom@127.0.0.1:$PORT/$DB"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_owner() { # runs a PostgreSQL tool as the cluster's owner
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [[ -f $DATA/postmaster.pid ]] && as_owner "$(bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
    [[ -n $(bindir) ]] || scripts/debian-need.sh /usr/lib/postgresql:postgresql
    local bin
    bin=$(bindir)
    [[ -x $bin/initdb ]] || { echo "no PostgreSQL binaries under /usr/lib/postgresql" >&2; exit 1; }
    if running; then
        setup "$bin"
        echo "PostgreSQL already running on 127.0.0.1:$PORT: $URL"
        return
    fi
    # Under /tmp: refuse a path someone else planted (a symlink, another owner), and keep
    # the cluster, its password file and its socket to the owner alone.
    local owner=$(id -un)
    [[ $(id -u) == 0 ]] && owner=postgres
    if [[ -L $DIR || ( -e $DIR && $(stat -c %U "$DIR") != "$owner" ) ]]; then
        echo "$DIR exists and is not $owner's own directory; remove it or set PG_DIR" >&2
        exit 1
    fi
    install -d -m 700 -o "$owner" "$DIR"
    if [[ ! -f $DATA/PG_VERSION ]]; then
        echo "darkroom" > "$DIR/pw"
        if [[ $(id -u) == 0 ]]; then chown postgres: "$DIR/pw"; fi
        as_owner "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$DIR/pw" -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    # authentication_timeout: a test that ends while one of its connections is halfway
    # through logging in leaves a backend that holds up every CREATE and DROP DATABASE
    # (they wait for all backends to accept a barrier) until it times out: 60 s by default.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c full_page_writes=off -c max_connections=200 -c authentication_timeout=5s" \
        start >/dev/null || { tail -20 "$DIR/server.log" >&2; exit 1; }
    setup "$bin"
    echo "PostgreSQL on 127.0.0.1:$PORT: $URL"
}

# The role and database the tests use (made once), and nothing left of earlier runs.
setup() {
    local psql=("$1/psql" -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
    if [[ -z $(as_owner "${psql[@]}" -c "select 1 from pg_roles where rolname = 'darkroom'") ]]; then
        as_owner "${psql[@]}" -c "create role darkroom login password 'darkroom' createdb"
    fi
    # Tests drop their scratch databases WITH (FORCE), which ends every session in them,
    # autovacuum's workers included.
    if [[ $(as_owner "${psql[@]}" -c "select pg_has_role('darkroom', 'pg_signal_backend', 'member')") != t ]]; then
        as_owner "${psql[@]}" -c "grant pg_signal_backend to darkroom"
    fi
    if [[ -z $(as_owner "${psql[@]}" -c "select 1 from pg_database where datname = '$DB'") ]]; then
        as_owner "${psql[@]}" -c "create database $DB owner darkroom"
    fi
    # Scratch databases a killed run could not drop (no test runs while this starts).
    local db
    for db in $(as_owner "${psql[@]}" -c "select datname from pg_database where datname ~ '^darkroom_t_'"); do
        as_owner "${psql[@]}" -c "drop database if exists $db with (force)"
    done
}

stop() {
    if running; then
        as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        echo "PostgreSQL stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac

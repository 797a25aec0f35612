# Private PostgreSQL and Mosquitto for ./run.sh when none is running.
# Sourced (bash). Each start_* function records how to stop what it started
# in LOCAL_STOPS; stop_local_services runs them (run.sh's Ctrl-C does).
#
# PostgreSQL: a cluster of its own (initdb once) on a Unix socket of its own,
# trust authentication, a superuser named like the current user (Odoo
# refuses to connect as "postgres").  As root the server runs as the
# "postgres" system user, which cannot enter root's home: its files then
# live under /var/tmp/open_workshop_mqtt-root instead.

LOCAL_STOPS=()

pg_answers() { # python
    "$1" -c "import psycopg2; psycopg2.connect(dbname='postgres').close()" 2>/dev/null
}

pg_server_bin() { # dir of initdb/pg_ctl, newest installed version first
    local dir
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

start_private_postgres() { # state dir, python
    local state="$1" py="$2" bin home as=() user
    bin="$(pg_server_bin)" || {
        echo "run.sh: no PostgreSQL answers and none is installed: apt-get install postgresql" >&2
        return 1
    }
    user="$(id -un)"
    home="$state/postgres"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "run.sh: as root the private PostgreSQL needs the 'postgres' system user" >&2; return 1; }
        home="/var/tmp/open_workshop_mqtt-root/postgres"
        mkdir -p "$home" && chown postgres: "$home" && chmod 700 "$home"
        as=(runuser -u postgres --)
    fi
    mkdir -p "$home"
    if [ ! -f "$home/data/PG_VERSION" ]; then
        echo "Creating a private PostgreSQL cluster in $home (once)"
        "${as[@]}" "$bin/initdb" -D "$home/data" -U "$user" --auth=trust -E UTF8 \
            >"$home/initdb.log" 2>&1 || { echo "run.sh: initdb failed; see $home/initdb.log" >&2; return 1; }
    fi
    if "${as[@]}" "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
        # Left running by a run that was killed: use it (and stop it this time).
        echo "Using the private PostgreSQL still running (socket in $home)"
    else
        echo "Starting a private PostgreSQL (socket in $home)"
        "${as[@]}" "$bin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 \
            -o "-k $home -c listen_addresses=''" start >/dev/null ||
            { echo "run.sh: PostgreSQL did not start; see $home/postgres.log" >&2; return 1; }
    fi
    export PGHOST="$home"
    LOCAL_STOPS+=("${as[*]} $bin/pg_ctl -D $home/data -m fast -w stop")
    pg_answers "$py" || { echo "run.sh: the private PostgreSQL does not answer" >&2; return 1; }
}

start_private_mosquitto() { # state dir, port
    local state="$1" port="$2" pid store
    command -v mosquitto >/dev/null 2>&1 || {
        echo "run.sh: no broker on 127.0.0.1:$port and no Mosquitto: apt-get install mosquitto" >&2
        return 1
    }
    store="$state/mosquitto"
    if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
        # Started as root Mosquitto runs as "mosquitto", who cannot enter
        # root's home: its persistence file lives where that user may write.
        store="/var/tmp/open_workshop_mqtt-root/mosquitto"
        mkdir -p "$store" && chown mosquitto: "$store"
    fi
    mkdir -p "$store"
    echo "Starting a local Mosquitto on 127.0.0.1:$port"
    cat >"$state/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $store/
max_queued_messages 100000
EOF
    mosquitto -c "$state/mosquitto.conf" >"$state/log/mosquitto.log" 2>&1 &
    pid=$!
    LOCAL_STOPS+=("kill -TERM $pid")
    for _ in $(seq 1 50); do port_open 127.0.0.1 "$port" && return 0; sleep 0.1; done
    echo "run.sh: Mosquitto did not start; see $state/log/mosquitto.log" >&2
    return 1
}

stop_local_services() {
    local stop
    for stop in "${LOCAL_STOPS[@]}"; do $stop >/dev/null 2>&1 || true; done
    LOCAL_STOPS=()
}

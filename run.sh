#!/usr/bin/env bash
# A live demo workshop in one command: Odoo 18 with this addon loaded
# server-wide (the MQTT runner inside Odoo), a local MQTT broker, and four
# simulated Shelly meters (laser cutter, table saw, 3D printer on PM Minis; a
# three-phase format saw on a Pro 3EM). Odoo is built once when no Python
# imports it; PostgreSQL and Mosquitto are started privately when none runs.
#
#   ./run.sh                 start (creates the demo database on first run)
#   ./run.sh --reset         drop the demo database and start fresh
#   OWM_DB=mydemo OWM_PORT=8070 OWM_SPEED=5 OWM_MQTT_PORT=1884 ./run.sh
#
# Ctrl-C stops everything this script started (Odoo, simulator, broker, database).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$ROOT/tools/odoo_env.sh"
# shellcheck source=tools/local_services.sh
. "$ROOT/tools/local_services.sh"

DB="${OWM_DB:-owm_demo}"
PORT="${OWM_PORT:-8069}"
SPEED="${OWM_SPEED:-1}"
SEED="${OWM_SEED:-42}"
BROKER_PORT="${OWM_MQTT_PORT:-1883}"
RESET=0
for arg in "$@"; do
    case "$arg" in
        --reset) RESET=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
PY="$(ensure_odoo_python)" || die "no Python imports Odoo 18.0 and building one failed (see above)"
ODOO_BIN="$(odoo_bin "$PY")"
"$PY" -c "import paho.mqtt" 2>/dev/null || die "paho-mqtt is missing: $PY -m pip install -r $ROOT/requirements.txt"
port_open 127.0.0.1 "$PORT" && die "port $PORT is busy (another Odoo?); set OWM_PORT"

STATE="${XDG_STATE_HOME:-$HOME/.local/state}/open_workshop_mqtt"
mkdir -p "$STATE/addons" "$STATE/log"
ln -sfn "$ROOT" "$STATE/addons/open_workshop_mqtt"
ODOO_ADDONS="$(cd "$STATE" && "$PY" -c "from odoo.tools import config; config.parse_config([]); print(config['addons_path'])" | tail -1)"
ADDONS_PATH="$ODOO_ADDONS,$STATE/addons,$ROOT/addons"
# The addon and the bridges of addons/ (maintenance, point of sale).
INSTALL="open_workshop_mqtt"
for manifest in "$ROOT"/addons/*/__manifest__.py; do
    [ -f "$manifest" ] && INSTALL="$INSTALL,$(basename "$(dirname "$manifest")")"
done

PIDS=()
wait_gone() { # seconds: until every started process ended, at most that long
    local pid="" _
    for _ in $(seq 1 $(($1 * 5))); do
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
        [ -z "$pid" ] && return 0
        sleep 0.2
    done
    return 1
}
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "Stopping..."
    # Ctrl-C reached Odoo and the simulator too: let them stop gracefully (a
    # second signal would make Odoo skip its shutdown), then insist.
    if [ "$1" = INT ] && [ ${#PIDS[@]} -gt 0 ]; then wait_gone 10 || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait_gone 10 || for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    stop_local_services
    echo "Stopped. The demo database '$DB' is kept (./run.sh --reset starts fresh)."
}
trap 'cleanup INT' INT
trap 'cleanup TERM' TERM
trap 'cleanup EXIT' EXIT

# PostgreSQL and a broker: the running ones, else private ones (stopped by Ctrl-C).
pg_answers "$PY" || start_private_postgres "$STATE" "$PY" ||
    die "cannot reach PostgreSQL as '$(id -un)' and could not start one"
port_open 127.0.0.1 "$BROKER_PORT" || start_private_mosquitto "$STATE" "$BROKER_PORT" ||
    die "no broker on 127.0.0.1:$BROKER_PORT and could not start one"

db_has_addon() {
    "$PY" - "$DB" <<'EOF' 2>/dev/null
import sys, psycopg2
try:
    cnx = psycopg2.connect(dbname=sys.argv[1])
except psycopg2.OperationalError:
    sys.exit(1)
cur = cnx.cursor()
cur.execute("SELECT 1 FROM ir_module_module WHERE name='open_workshop_mqtt' AND state='installed'")
sys.exit(0 if cur.fetchone() else 1)
EOF
}

if [ "$RESET" = 1 ]; then
    echo "Dropping database $DB"
    "$PY" -c "import psycopg2; c=psycopg2.connect(dbname='postgres'); c.autocommit=True; c.cursor().execute('DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)')"
fi
CREATED=0
if ! db_has_addon; then
    CREATED=1
    echo "Creating the demo database $DB with the addons and demo data (about two minutes)..."
    # English first (the database default), German for the staff demo user.
    "$PY" "$ODOO_BIN" -d "$DB" -i "$INSTALL" --addons-path="$ADDONS_PATH" \
        --load-language=en_US,de_DE --stop-after-init --max-cron-threads=0 --logfile="$STATE/log/install.log" ||
        die "installing the addon failed; see $STATE/log/install.log"
fi

# After an update of this checkout, update the addon in the demo database too.
CODE_HASH="$(cd "$ROOT" && find . -path ./.git -prune -o -type f \( -name '*.py' -o -name '*.xml' \
    -o -name '*.csv' -o -name '*.po' -o -name '*.js' -o -name '*.scss' \) -print | sort |
    xargs sha1sum | sha1sum | cut -c1-40)"
if [ "$CREATED" = 1 ]; then
    echo "$CODE_HASH" >"$STATE/$DB.code"
elif [ "$(cat "$STATE/$DB.code" 2>/dev/null)" != "$CODE_HASH" ]; then
    echo "The addon changed since $DB was last updated: updating it..."
    # (-i adds a bridge that came with the update; -u updates the rest.)
    "$PY" "$ODOO_BIN" -d "$DB" -i "$INSTALL" -u "$INSTALL" --addons-path="$ADDONS_PATH" \
        --stop-after-init --max-cron-threads=0 --logfile="$STATE/log/update.log" ||
        die "updating the addon failed; see $STATE/log/update.log"
    echo "$CODE_HASH" >"$STATE/$DB.code"
fi

# The demo broker connection points at the broker used here.
"$PY" - "$DB" "$BROKER_PORT" <<'EOF'
import sys, psycopg2
cnx = psycopg2.connect(dbname=sys.argv[1])
cnx.cursor().execute(
    "UPDATE mqtt_connection SET port = %s WHERE id = (SELECT res_id FROM ir_model_data"
    " WHERE module = 'open_workshop_mqtt' AND name = 'demo_connection')",
    (int(sys.argv[2]),),
)
cnx.commit()
EOF

echo "Starting Odoo on http://127.0.0.1:$PORT (log: $STATE/log/odoo.log)"
"$PY" "$ODOO_BIN" -d "$DB" --db-filter="^$DB\$" --addons-path="$ADDONS_PATH" \
    --load=base,web,open_workshop_mqtt --http-port="$PORT" \
    --logfile="$STATE/log/odoo.log" &
PIDS+=($!)
for _ in $(seq 1 120); do
    "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/web/health', timeout=1)" 2>/dev/null && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "Odoo exited; see $STATE/log/odoo.log"
    sleep 0.5
done

if [ "$CREATED" = 1 ]; then
    echo "Recording two weeks of demo machine history (about a minute)..."
    "$PY" "$ROOT/tools/demo_history.py" --url "http://127.0.0.1:$PORT" --db "$DB" ||
        echo "run.sh: the demo history could not be recorded (the live demo works without it)"
fi

echo "Starting the meter simulator (speed x$SPEED, seed $SEED)"
# Without --devices it plays the demo workshop's meters (DEMO in shelly_sim.py).
"$PY" "$ROOT/tools/shelly_sim.py" --host 127.0.0.1 --port "$BROKER_PORT" \
    --speed "$SPEED" --seed "$SEED" >"$STATE/log/simulator.log" 2>&1 &
PIDS+=($!)

cat <<EOF

  Open workshop is running.

  URL:      http://127.0.0.1:$PORT/odoo/action-open_workshop_mqtt.mqtt_device_action_board
  Logins:   admin / admin            (administrator, workshop manager)
            leitung / leitung        (workshop manager)
            werkstatt / werkstatt    (workshop staff, German)

  The live board changes as the simulated machines work; sessions appear
  under Workshop > Sessions. Press Ctrl-C to stop.

EOF
wait "${PIDS[-2]}"

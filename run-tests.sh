#!/usr/bin/env bash
# Runs every test of open_workshop_mqtt and prints one pytest-style summary.
#
#   ./run-tests.sh            lint, pure tests, Odoo tests (incl. browser tour), end-to-end
#   ./run-tests.sh unit       only the pure tests (no database needed)
#   ./run-tests.sh odoo e2e   any subset of: lint unit odoo e2e
#
# Every test is a pytest test, run through the checkout's link named
# open_workshop_mqtt (its package name): the pure ones plainly, the Odoo-layer
# ones with pytest-odoo on a throwaway database, the end-to-end ones against
# real servers. Odoo's own test runner also runs the Odoo-layer tests while it
# installs the addon into that database (what only shows during an install).
#
# Needs: PostgreSQL (local socket, current user may create databases), the
# mosquitto binary (tests start their own brokers on free ports; the Odoo tests
# also use 127.0.0.1:1883), Chromium for the browser tour, nginx for the
# deployment test (both installed when missing and run as root with apt). Odoo 18.0 is built
# once per user (tools/bootstrap_odoo.sh) when no Python here imports it. Each
# Odoo stage uses a throwaway database that is dropped.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
# shellcheck source=tools/odoo_env.sh
. "$ROOT/tools/odoo_env.sh"

STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(lint unit odoo e2e)
want() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

PY="$(ensure_odoo_python)" || { echo "Cannot run the tests: no Python with Odoo 18.0 (see above)" >&2; exit 2; }
ODOO_BIN="$(odoo_bin "$PY")"
# The pinned test tools: installed by themselves into the environment the
# bootstrap built; another Python is the user's to change.
if ! "$PY" -c "import pytest, pytest_timeout, hypothesis, paho.mqtt, websocket, ruff, pylint_odoo, mypy" 2>/dev/null; then
    case "$PY" in
        "$OWM_DATA"/*)
            echo "== installing the pinned test tools (requirements-test.txt)"
            "$PY" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt >&2 ;;
    esac
fi
if want e2e && ! command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null 2>&1; then
    echo "== installing nginx for the deployment test (apt-get install nginx)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
if want odoo && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null 2>&1; then
    echo "== installing Chromium for the browser tour (apt-get install chromium)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

missing=()
"$PY" -c "import pytest, hypothesis, paho.mqtt" 2>/dev/null ||
    missing+=("Python test tools: run '$PY -m pip install -r requirements-test.txt'")
if want odoo || want e2e; then
    "$PY" -c "import psycopg2; psycopg2.connect(dbname='postgres').close()" 2>/dev/null ||
        missing+=("PostgreSQL: cannot connect to the local server as '$(id -un)' (is it running?)")
    command -v mosquitto >/dev/null 2>&1 || missing+=("Mosquitto: the 'mosquitto' binary is not installed (apt-get install mosquitto)")
    port_open 127.0.0.1 1883 || missing+=("Mosquitto: nothing listens on 127.0.0.1:1883 (start: mosquitto -d)")
fi
if want e2e; then
    command -v nginx >/dev/null 2>&1 || missing+=("nginx: needed for the deployment test (apt-get install nginx)")
fi
if want odoo; then
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
        command -v google-chrome >/dev/null 2>&1 ||
        missing+=("Chromium: needed for the browser tour (apt-get install chromium)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "Cannot run the tests, missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi

WORK="$(mktemp -d -t owm-tests-XXXXXX)"
ADDONS="$WORK/addons"
mkdir -p "$ADDONS"
# The technical name is open_workshop_mqtt whatever this checkout's folder is called.
ln -s "$ROOT" "$ADDONS/open_workshop_mqtt"
ODOO_ADDONS="$(cd "$WORK" && "$PY" -c "from odoo.tools import config; config.parse_config([]); print(config['addons_path'])" 2>/dev/null | tail -1)"
# The repository's other addons: the bridges and the session hook's example.
EXTRA_ADDONS=""
for extra in "$ROOT/addons" "$ROOT/tests/addons"; do
    [ -d "$extra" ] && EXTRA_ADDONS="$EXTRA_ADDONS,$extra"
done
export OWM_PYTHON="$PY" OWM_ADDONS_PATH="$ODOO_ADDONS,$ADDONS$EXTRA_ADDONS" OWM_ROOT="$ROOT"
DB="owm_test_$(date +%Y%m%d%H%M%S)_$$"
cleanup() {
    "$PY" - "$DB" <<'EOF' 2>/dev/null
import sys, psycopg2
conn = psycopg2.connect(dbname="postgres"); conn.autocommit = True
conn.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % sys.argv[1])
EOF
    rm -rf "$WORK"
}
trap cleanup EXIT

PASSED=0
FAILED=0
REPORT=()
record() { # stage passed failed
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    REPORT+=("$(printf '%-5s %4d passed, %d failed' "$1" "$2" "$3")")
}

pytest_stage() { # name, pytest args...
    local name="$1"; shift
    local xml="$WORK/$name.xml"
    "$PY" -m pytest -p no:cacheprovider --junitxml="$xml" "$@"
    local rc=$?
    if [ -f "$xml" ]; then
        read -r p f < <("$PY" - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
# Test cases, not the suite's "tests" attribute (which counts subtests too).
cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
bad = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
skip = sum(1 for c in cases if c.find("skipped") is not None)
print(len(cases) - bad - skip, bad)
EOF
)
    else
        p=0; f=1
    fi
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record "$name" "$p" "$f"
}

# The tests through the link: their package is open_workshop_mqtt.
T="$ADDONS/open_workshop_mqtt/tests"
# A test that needs a broker fails here instead of skipping (tests/conftest.py).
export OWM_REQUIRE_ALL=1

if want lint; then
    echo "== lint: ruff, pylint-odoo, mypy"
    lint_fail=0
    "$PY" -m ruff check . || lint_fail=1
    "$PY" -m ruff format --check . || lint_fail=1
    # pylint-odoo reads the manifest from the addon folder: lint the linked copy.
    (cd "$ADDONS" && "$PY" -m pylint --rcfile="$ROOT/.pylintrc-mandatory" open_workshop_mqtt) ||
        lint_fail=1
    # The bridges, each an addon of its own (addons/).
    for manifest in "$ROOT"/addons/*/__manifest__.py; do
        [ -f "$manifest" ] || continue
        (cd "$ROOT/addons" && "$PY" -m pylint --rcfile="$ROOT/.pylintrc-mandatory" \
            "$(basename "$(dirname "$manifest")")") || lint_fail=1
    done
    # The pure packages' type annotations (pyproject.toml: [tool.mypy]).
    (cd "$ADDONS" && "$PY" -m mypy --config-file="$ROOT/pyproject.toml") || lint_fail=1
    record lint $((1 - lint_fail)) "$lint_fail"
fi

if want unit; then
    echo "== unit: the pure packages and the tools, no database"
    pytest_stage unit -q "$T/parsers" "$T/services/engine" "$T/services/mqtt" "$T/tools"
fi

# What the Odoo stage installs: the addon, the session hook's example (so
# every test of the Odoo layer runs a real override of the hook) and the
# bridges of addons/ (tools/harness_base.py bridge_addons, for the e2e tests).
BRIDGES=()
for manifest in "$ROOT"/addons/*/__manifest__.py; do
    [ -f "$manifest" ] && BRIDGES+=("$(basename "$(dirname "$manifest")")")
done
INSTALL="$(IFS=,; echo "open_workshop_mqtt,owm_session_hook_example${BRIDGES[*]:+,${BRIDGES[*]}}")"
BRIDGE_TESTS=()
for bridge in "${BRIDGES[@]}"; do
    [ -d "$ROOT/addons/$bridge/tests" ] && BRIDGE_TESTS+=("$ROOT/addons/$bridge/tests")
done
if want odoo; then
    echo "== odoo: install on database $DB with Odoo's test runner, then pytest-odoo"
    PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    LOG="$WORK/odoo-tests.log"
    "$PY" "$ODOO_BIN" -d "$DB" -i "$INSTALL" --addons-path="$OWM_ADDONS_PATH" \
        --test-enable --test-tags=/open_workshop_mqtt --stop-after-init \
        --http-port="$PORT" --http-interface=127.0.0.1 --log-level=test \
        --max-cron-threads=0 --data-dir="$WORK/data" >"$LOG" 2>&1
    rc=$?
    grep -E "(ERROR|CRITICAL|FAIL:|Traceback)" "$LOG" | grep -v "odoo.sql_db: bad query" | head -100
    result="$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests' "$LOG" | tail -1)"
    if [ -z "$result" ]; then
        echo "Odoo test run produced no result line (exit $rc); last log lines:"
        tail -30 "$LOG"
        record install 0 1
    else
        read -r f e t < <(echo "$result" | sed -E 's/([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests/\1 \2 \3/')
        bad=$((f + e))
        # An error logged outside a test (e.g. at install) fails the run too.
        if [ "$bad" -eq 0 ] && grep -qE " (ERROR|CRITICAL) " "$LOG"; then
            grep -E " (ERROR|CRITICAL) " "$LOG" | head -5
            bad=1
        fi
        record install $((t - f - e)) "$bad"
    fi
    pytest_stage odoo -q --odoo-database="$DB" --odoo-addons-path="$OWM_ADDONS_PATH" \
        --odoo-log-level=warn --odoo-http --odoo-extra="data-dir=$WORK/data" \
        --odoo-extra=test-enable \
        "$T/models" "$T/services/runner" "$T/browser" "${BRIDGE_TESTS[@]}"
fi

if want e2e; then
    echo "== e2e: real odoo server processes, real Mosquitto"
    pytest_stage e2e -q -x "$T/e2e"
fi

echo
printf '%s\n' "${REPORT[@]}"
echo "================ $PASSED passed, $FAILED failed ================"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# Refresh i18n/open_workshop_mqtt.pot from a throwaway database and list the
# terms i18n/de.po lacks (or no longer needs). Translate those, then run the
# Odoo tests: tests/test_i18n.py checks de.po against the template.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/tools/odoo_env.sh"
PY="$(ensure_odoo_python)"
ODOO_BIN="$(odoo_bin "$PY")"
WORK="$(mktemp -d)"
DB="owm_i18n_$$"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true; rm -rf "$WORK" "$HOME/.local/share/Odoo/filestore/$DB"' EXIT
mkdir -p "$WORK/addons" && ln -s "$ROOT" "$WORK/addons/open_workshop_mqtt"
ADDONS="$(cd "$WORK" && "$PY" -c "from odoo.tools import config; config.parse_config([]); print(config['addons_path'])" | tail -1),$WORK/addons"
"$PY" "$ODOO_BIN" -d "$DB" -i open_workshop_mqtt --addons-path="$ADDONS" --without-demo=all \
    --stop-after-init --log-level=warn --logfile="$WORK/install.log"
"$PY" "$ODOO_BIN" -d "$DB" --addons-path="$ADDONS" --modules=open_workshop_mqtt \
    --i18n-export="$ROOT/i18n/open_workshop_mqtt.pot" --stop-after-init --log-level=warn \
    --logfile="$WORK/export.log"
"$PY" - "$ROOT/i18n" <<'PYEOF'
import sys, polib
pot = polib.pofile(f"{sys.argv[1]}/open_workshop_mqtt.pot")
po = polib.pofile(f"{sys.argv[1]}/de.po")
ids = {e.msgid for e in pot}
have = {e.msgid for e in po}
for e in pot:
    if e.msgid not in have:
        print("missing in de.po:", repr(e.msgid))
for e in po:
    if e.msgid not in ids:
        print("obsolete in de.po:", repr(e.msgid))
PYEOF

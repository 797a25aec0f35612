#!/usr/bin/env bash
# Refresh an addon's i18n/<module>.pot from a throwaway database and list the
# terms its i18n/de.po lacks (or no longer needs). Translate those, then run
# the Odoo tests: the catalog tests check de.po against the template.
#
#   tools/i18n_export.sh                                   # the main addon
#   tools/i18n_export.sh open_workshop_mqtt_maintenance    # a bridge (addons/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="${1:-open_workshop_mqtt}"
if [ "$MODULE" = open_workshop_mqtt ]; then DIR="$ROOT"; else DIR="$ROOT/addons/$MODULE"; fi
[ -f "$DIR/__manifest__.py" ] || { echo "no addon $MODULE at $DIR" >&2; exit 2; }
. "$ROOT/tools/odoo_env.sh"
PY="$(ensure_odoo_python)"
ODOO_BIN="$(odoo_bin "$PY")"
WORK="$(mktemp -d)"
DB="owm_i18n_$$"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true; rm -rf "$WORK" "$HOME/.local/share/Odoo/filestore/$DB"' EXIT
mkdir -p "$WORK/addons" && ln -s "$ROOT" "$WORK/addons/open_workshop_mqtt"
ADDONS="$(cd "$WORK" && "$PY" -c "from odoo.tools import config; config.parse_config([]); print(config['addons_path'])" | tail -1),$WORK/addons,$ROOT/addons"
"$PY" "$ODOO_BIN" -d "$DB" -i "$MODULE" --addons-path="$ADDONS" --without-demo=all \
    --stop-after-init --log-level=warn --logfile="$WORK/install.log"
mkdir -p "$DIR/i18n"
"$PY" "$ODOO_BIN" -d "$DB" --addons-path="$ADDONS" --modules="$MODULE" \
    --i18n-export="$DIR/i18n/$MODULE.pot" --stop-after-init --log-level=warn \
    --logfile="$WORK/export.log"
# The main addon's folder holds the bridges (addons/): Odoo's export reads
# their code as the main addon's. Their terms are theirs: drop them here.
"$PY" - "$DIR/i18n/$MODULE.pot" "$MODULE" <<'PYEOF'
import sys, polib
pot = polib.pofile(sys.argv[1])
bridges = f"code:addons/{sys.argv[2]}/addons/"
for entry in list(pot):
    kept = [o for o in entry.occurrences if not o[0].startswith(bridges)]
    if not kept and entry.occurrences:
        pot.remove(entry)
    else:
        entry.occurrences = kept
pot.save(sys.argv[1])
PYEOF
[ -f "$DIR/i18n/de.po" ] || msginit --no-translator -l de_DE.UTF-8 -i "$DIR/i18n/$MODULE.pot" \
    -o "$DIR/i18n/de.po" 2>/dev/null || cp "$DIR/i18n/$MODULE.pot" "$DIR/i18n/de.po"
"$PY" - "$DIR/i18n" "$MODULE" <<'PYEOF'
import sys, polib
pot = polib.pofile(f"{sys.argv[1]}/{sys.argv[2]}.pot")
po = polib.pofile(f"{sys.argv[1]}/de.po")
ids = {e.msgid for e in pot}
have = {e.msgid for e in po if e.msgstr}
for e in pot:
    if e.msgid not in have:
        print("missing in de.po:", repr(e.msgid))
for e in po:
    if e.msgid not in ids:
        print("obsolete in de.po:", repr(e.msgid))
PYEOF

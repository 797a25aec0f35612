# Sourced by run.sh, run-tests.sh, .ci/run and tools/*.sh: the Python that imports
# Odoo 18.0, Odoo's own entry point, and a few probes. CI runs in a plain shell (no
# pyenv in PATH), so the usual places are searched too, and the environment that
# tools/bootstrap_odoo.sh builds comes first.
OWM_DATA="${OWM_DATA_HOME:-${XDG_DATA_HOME:-${HOME:-/root}/.local/share}/open_workshop_mqtt}"
OWM_ODOO_ENV="$OWM_DATA/odoo-18.0"
# Raised whenever tools/bootstrap_odoo.sh builds differently: an environment
# built by an older recipe is rebuilt, not trusted.
OWM_RECIPE=3

# The bootstrap's environment, if it is complete and of the current recipe.
owm_env_python() {
    [ "$(cat "$OWM_ODOO_ENV/recipe" 2>/dev/null)" = "$OWM_RECIPE" ] || return 1
    "$OWM_ODOO_ENV/venv/bin/python" -c "import odoo.release as r; assert r.version_info[0] == 18" \
        >/dev/null 2>&1 || return 1
    echo "$OWM_ODOO_ENV/venv/bin/python"
}

find_odoo_python() {
    local candidate
    owm_env_python && return 0
    for candidate in "${PYTHON:-}" python3 \
        "${HOME:-/root}/.pyenv/shims/python3" /root/.pyenv/shims/python3 \
        "${HOME:-/root}"/.pyenv/versions/*/bin/python3 /root/.pyenv/versions/*/bin/python3 \
        /usr/local/bin/python3 /usr/bin/python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c "import odoo.release as r; assert r.version_info[0] == 18" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# The Python that imports Odoo 18.0; builds one (tools/bootstrap_odoo.sh) when there is none.
ensure_odoo_python() {
    find_odoo_python && return 0
    "$(dirname "${BASH_SOURCE[0]}")/bootstrap_odoo.sh"
}

# Odoo's own entry point for a Python (odoo-bin, not `python -m odoo`: see tools/odoo_entry.py).
odoo_bin() { # python
    "$1" "$(dirname "${BASH_SOURCE[0]}")/odoo_entry.py"
}

port_open() {
    (exec 3<>"/dev/tcp/${1}/${2}") 2>/dev/null
}

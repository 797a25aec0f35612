# Sourced by run.sh, run-tests.sh and .ci/run: pick the Python that imports Odoo.
# CI runs in a plain shell (no pyenv in PATH), so look in the usual places too.
find_odoo_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 "${HOME:-/root}/.pyenv/shims/python3" \
        /root/.pyenv/shims/python3 "${HOME:-/root}"/.pyenv/versions/*/bin/python3 \
        /root/.pyenv/versions/*/bin/python3 /usr/local/bin/python3 /usr/bin/python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c "import odoo.release as r; assert r.version_info[0] == 18" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

port_open() {
    (exec 3<>"/dev/tcp/${1}/${2}") 2>/dev/null
}

"""Print Odoo's own entry point for the Python that runs this file.

A prefork Odoo starts its gevent (websocket) process as
``[sys.executable, sys.argv[0], "gevent", ...]``: started as ``python -m odoo`` that
process dies at once, so every server is started through ``odoo-bin`` (a source
checkout) or the ``odoo`` script (a pip install). Used by the shell scripts
(``tools/odoo_env.sh``) and the test harness alike.
"""

import os
import sys


def entry_point():
    import odoo

    root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__)))
    for path in (
        os.path.join(root, "odoo-bin"),
        os.path.join(os.path.dirname(sys.executable), "odoo"),
    ):
        if os.path.isfile(path):
            return path
    raise SystemExit(
        f"no odoo-bin beside {odoo.__file__} and no 'odoo' script beside "
        f"{sys.executable}"
    )


if __name__ == "__main__":
    print(entry_point())

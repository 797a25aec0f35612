"""Real processes for end-to-end tests, fault scenarios and the benchmark.

A Mosquitto broker on a free port (persistence on, restartable), Odoo server
processes with the addon server-wide (threaded or prefork), a JSON-RPC client,
a Shelly Gen2/Gen3 frame publisher and bounded waits.  No Odoo import here:
everything talks to the real processes, as a user's browser or a meter would.

The pieces live in harness_base.py, harness_broker.py, harness_odoo.py and
harness_meters.py; this module gathers them (``import owm_harness as h``).
"""

from harness_base import (  # noqa: F401
    ADDON,
    ODOO_ADDONS_SNIPPET,
    ROOT,
    addons_path,
    bridge_addons,
    free_port,
    odoo_default_addons_path,
    odoo_python,
    port_open,
    rmtree,
    wait_for,
)
from harness_broker import (  # noqa: F401
    SUBSCRIBE_LOG,
    FaultBroker,
    Mosquitto,
    make_tls_material,
    take_over_session,
    tls_listener_conf,
)
from harness_meters import (  # noqa: F401
    MeterStream,
    PatternMeter,
    ShellyPublisher,
    delivery_figures,
    figures,
    raw_log,
    session_rows,
    stream_figures,
    wait_closed_sessions,
    wait_recorded,
)
from harness_odoo import (  # noqa: F401
    OdooServer,
    Rpc,
    RpcError,
    clone_database,
    connection_row,
    copy_filestore,
    create_template,
    db_scalar,
    drop_database,
    pg_connect,
    process_tree_rss_mb,
    setup_workshop,
    terminate_backends,
    wait_state,
)

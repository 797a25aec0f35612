# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The live board in a real browser (headless Chromium, an Odoo tour).

The test server hosts the runner as the threaded server would (a thread in
this process; ``Registry.cursor()`` gives it this test's transaction) and a
meter publishes to the local Mosquitto.  The runner's test cursors share
this test's connection and take the registry's test lock; this thread takes
it too whenever it reads on its own cursor meanwhile.  Two things test mode
does not do by itself are done here: websockets are allowed (as in Odoo's own
bus tests), and since a test transaction never commits, the ``NOTIFY imbus`` that a
commit would send is replaced by asking the dispatcher to look for the new
bus rows -- what a commit would have triggered.
"""

import json
import socket
import threading
import time
import uuid
from unittest.mock import patch

import paho.mqtt.client as mqtt

from odoo.tests import HttpCase, tagged

from odoo.addons.bus.models.bus import channel_with_db, dispatch, hashable
from odoo.addons.bus.websocket import WebsocketConnectionHandler

from ...services.runner.database_runner import DatabaseRunner, RunnerSettings

BROKER = ("127.0.0.1", 1883)


def _broker_up():
    try:
        with socket.create_connection(BROKER, 1):
            return True
    except OSError:
        return False


@tagged("post_install", "-at_install")
class TestLiveBoardTour(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(
            patch.object(
                WebsocketConnectionHandler, "websocket_allowed", return_value=True
            )
        )

    def setUp(self):
        super().setUp()
        if not _broker_up():
            self.skipTest("no MQTT broker on 127.0.0.1:1883")
        # Only this test's broker connection: demo ones would auto-start too.
        self.env["mqtt.connection"].search([]).write({"auto_start": False})
        suffix = uuid.uuid4().hex[:12]
        self.prefix = f"shellypmminig3-{suffix}"
        self.connection = self.env["mqtt.connection"].create(
            {
                "name": "Tour broker",
                "host": BROKER[0],
                "port": BROKER[1],
                "client_id": f"owm-tour-{suffix}",
                "auto_start": False,
                "session_expiry_s": 0,
            }
        )
        self.device = self.env["mqtt.device"].create(
            {
                "name": "Tour Laser",
                "connection_id": self.connection.id,
                "topic_prefix": self.prefix,
                "machine_type": "laser",
                "poll_interval_s": 0,
                "start_debounce_s": 1,
            }
        )
        # A silent neighbour: the tour checks that cards of a row line up.
        self.env["mqtt.device"].create(
            {
                "name": "Tour Saw",
                "connection_id": self.connection.id,
                "topic_prefix": f"{self.prefix}-saw",
                "machine_type": "saw",
                "poll_interval_s": 0,
            }
        )
        # Computed here: the meter thread must not use this test's cursor
        # (the browser's requests run on it at the same time).
        group = self.env.ref("open_workshop_mqtt.group_user")
        self.channel = hashable(channel_with_db(self.registry.db_name, group))
        self.stop = threading.Event()
        self.service = DatabaseRunner(
            self.env.cr.dbname, RunnerSettings(flush_interval_s=0.1, node="tour-runner")
        )
        self.service.start()
        self.addCleanup(self.service.stop)
        self.meter = threading.Thread(target=self._play_meter, daemon=True)
        self.meter.start()
        self.addCleanup(self.meter.join, 10)
        self.addCleanup(self.stop.set)

    def _connected(self):
        owned = self.service.owned.get(self.connection.id)
        return owned is not None and owned.client.connected

    def _play_meter(self):
        """Idle until the broker connection is started, then idle 15 s, then
        work; after each step wake the websockets like a commit would."""
        pub = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.prefix}-sim"
        )
        pub.connect(*BROKER)
        pub.loop_start()
        try:
            deadline = time.monotonic() + 120
            while not self._connected() and time.monotonic() < deadline:
                if self.stop.wait(0.2):
                    return
            started = time.monotonic()
            while not self.stop.is_set() and time.monotonic() < deadline:
                elapsed = time.monotonic() - started
                watts = 0.0 if elapsed < 15 else 750.0 + (elapsed % 3)
                frame = {
                    "src": self.prefix,
                    "dst": f"{self.prefix}/events",
                    "method": "NotifyStatus",
                    "params": {"ts": round(time.time(), 2), "pm1:0": {"apower": watts}},
                }
                pub.publish(f"{self.prefix}/events/rpc", json.dumps(frame), qos=1)
                self.stop.wait(0.5)
                self._wake_websockets()
        finally:
            pub.loop_stop()
            pub.disconnect()

    def authenticate(self, user, password, browser=None):
        """Under the test lock: it reads the user on this test's cursor,
        which the runner's thread shares (its test cursors take the lock);
        two threads on one connection read each other's results."""
        with self.registry.test_lock:
            return super().authenticate(user, password, browser)

    def _wake_websockets(self):
        for websocket in list(dispatch._channels_to_ws.get(self.channel, [])):
            websocket.trigger_notification_dispatching()

    def test_live_board_changes_without_reload(self):
        self.start_tour(
            "/odoo/action-open_workshop_mqtt.mqtt_connection_action",
            "owm_live_board_tour",
            login="admin",
            timeout=180,
        )
        with self.registry.test_lock:  # the runner still writes (see authenticate)
            session = self.env["mqtt.session"].search(
                [("device_id", "=", self.device.id)]
            )
            self.assertEqual(len(session), 1)
            self.assertEqual(session.origin, "power")
            self.assertGreater(session.working_duration_s, 0)

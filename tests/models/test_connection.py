# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import socket
from datetime import timedelta
from unittest.mock import patch

from psycopg2 import IntegrityError

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..common import WorkshopCase

NOTIFY = "odoo.addons.open_workshop_mqtt.models.mqtt_connection.notify_runner"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install")
class TestConnection(WorkshopCase):
    def test_start_stop_record_the_wish_and_wake_the_runner(self):
        with patch(NOTIFY) as notify:
            self.connection.action_start()
            self.assertTrue(self.connection.run_requested)
            self.assertEqual(notify.call_count, 1)
            self.connection.action_stop()
            self.assertFalse(self.connection.run_requested)
            self.assertEqual(notify.call_count, 2)
            # A change the runner does not care about does not wake it.
            self.connection.write({"stat_received": 5})
            self.assertEqual(notify.call_count, 2)

    def test_client_ids_are_unique_by_default(self):
        other = self.connection.copy({"name": "Copy"})
        self.assertTrue(other.client_id.startswith("owm-"))
        self.assertNotEqual(other.client_id, self.connection.client_id)
        self.assertFalse(other.password, "a copy must not carry the password along")
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            with self.cr.savepoint():
                other.client_id = self.connection.client_id
                other.flush_recordset()

    def test_invalid_settings_are_refused_with_a_reason(self):
        cases = [
            ({"port": 0}, "port must be between 1 and 65535"),
            ({"port": 70000}, "port must be between 1 and 65535"),
            ({"keepalive": 1}, "Keepalive must be between"),
            ({"session_expiry_s": -1}, "between 0 and 2592000 seconds"),
            ({"session_expiry_s": 2592001}, "between 0 and 2592000 seconds"),
            ({"reconnect_min_s": 0}, "reconnect delay must be positive"),
            ({"reconnect_min_s": 10, "reconnect_max_s": 5}, "not larger than"),
            ({"reconnect_factor": 0.5}, "at least 1"),
            ({"host": "my broker"}, "is not a broker host"),
            ({"host": "mqtt://x"}, "is not a broker host"),
        ]
        self.connection.session_expiry_s = 2592000  # the cap itself is allowed
        for vals, message in cases:
            with (
                self.subTest(vals=vals),
                self.assertRaisesRegex(ValidationError, message),
            ):
                with self.cr.savepoint():
                    self.connection.write(vals)

    def test_runner_status_says_plainly_when_no_runner_is_loaded(self):
        self.connection.run_requested = True
        self.assertFalse(self.connection.runner_alive)
        self.assertIn("server_wide_modules", self.connection.runner_status)
        self.connection.write(
            {"heartbeat": fields.Datetime.now(), "owner_node": "node-a:1234"}
        )
        self.assertTrue(self.connection.runner_alive)
        self.assertIn("server node-a (process 1234)", self.connection.runner_status)
        # Staff learn that it runs, not where.
        as_user = self.connection.with_user(self.user)
        self.assertNotIn("node-a", as_user.runner_status)
        self.assertIn("Read by the runner", as_user.runner_status)
        self.connection.heartbeat = fields.Datetime.now() - timedelta(minutes=5)
        self.assertFalse(self.connection.runner_alive)

    def test_test_connection_against_the_real_broker(self):
        result = self.connection.with_user(self.manager).action_test_connection()
        self.assertEqual(result["params"]["type"], "success")
        self.assertIn("Connected to 127.0.0.1:1883", result["params"]["message"])

    def test_test_connection_failure_in_plain_words_without_secrets(self):
        self.connection.port = _free_port()
        with self.assertRaises(UserError) as caught:
            self.connection.with_user(self.manager).action_test_connection()
        text = str(caught.exception)
        self.assertIn("refused the connection", text)
        self.assertNotIn("s3cret-pass", text)

    def test_users_cannot_start_or_configure_brokers(self):
        with self.assertRaises(AccessError):
            self.connection.with_user(self.user).write({"host": "10.0.0.1"})
        with self.assertRaises(AccessError):
            self.connection.with_user(self.user).action_start()
        with self.assertRaises(AccessError):
            self.env["mqtt.connection"].with_user(self.user).create({"name": "x"})

    def test_view_devices_action_is_filtered(self):
        action = self.connection.action_view_devices()
        self.assertEqual(action["domain"], [("connection_id", "=", self.connection.id)])
        self.assertEqual(self.connection.device_count, 1)


@tagged("post_install", "-at_install")
class TestConnectionService(WorkshopCase):
    """start, stop, restart and status: what code and the buttons use."""

    def test_start_restart_stop_and_status(self):
        conn = self.connection.with_user(self.manager)
        conn.start()
        self.assertTrue(self.connection.run_requested)
        before = self.connection.restart_count
        conn.restart()
        self.assertEqual(self.connection.restart_count, before + 1)
        self.connection.sudo().write(
            {
                "state": "connected",
                "heartbeat": fields.Datetime.now(),
                "state_since": fields.Datetime.now(),
                "owner_node": "node-a:77",
                "queue_depth": 12,
            }
        )
        status = conn.status()[self.connection.id]
        self.assertEqual(status["state"], "connected")
        self.assertTrue(status["runner_alive"])
        self.assertEqual(status["node"], "node-a:77")
        self.assertEqual(status["queue_depth"], 12)
        self.assertIn("server node-a (process 77)", status["sentence"])
        self.assertTrue(status["since"])
        conn.stop()
        self.assertFalse(self.connection.run_requested)

    def test_staff_may_not_use_it(self):
        conn = self.connection.with_user(self.user)
        for method in ("start", "stop", "restart", "status"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(conn, method)()

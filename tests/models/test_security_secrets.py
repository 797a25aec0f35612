# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The broker password never shows: not in the log (whatever the level), not
in an error message, not in a repr, also when the broker refuses it.  A
private Mosquitto that requires a password plays the broker."""

import contextlib
import logging
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from odoo.exceptions import UserError
from odoo.tests import tagged

from ...services.mqtt.connect import ClientSettings
from ...services.mqtt.texts import describe_exception
from ...services.runner.config import load_connections
from ..common import WorkshopCase

GOOD = "good-Pw-3c8f-heron"
WRONG = "wrong-Pw-51ab-otter"
LOGGERS = ("", "odoo", "odoo.addons.open_workshop_mqtt", "paho")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@contextlib.contextmanager
def capture_all_logs():
    """Every record of every level, as the most verbose log would show it."""
    handler = _Capture()
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler.texts
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@tagged("post_install", "-at_install")
class TestSecretsNeverShow(WorkshopCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not (shutil.which("mosquitto") and shutil.which("mosquitto_passwd")):
            cls.broker = None
            return
        cls.tmp = tempfile.mkdtemp(prefix="owm-auth-broker-")
        passwd = os.path.join(cls.tmp, "passwd")
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", passwd, "meter", GOOD],
            check=True,
            capture_output=True,
            timeout=30,
        )
        cls.port = _free_port()
        conf = os.path.join(cls.tmp, "mosquitto.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            if os.geteuid() == 0:
                fh.write("user root\n")  # else it drops to 'mosquitto': no passwd
            fh.write(
                f"listener {cls.port} 127.0.0.1\n"
                "allow_anonymous false\n"
                f"password_file {passwd}\n"
            )
        cls.broker = subprocess.Popen(
            ["mosquitto", "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cls.addClassCleanup(cls._stop_broker)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", cls.port), 0.5),
            ):
                break
            time.sleep(0.1)

    @classmethod
    def _stop_broker(cls):
        cls.broker.terminate()
        cls.broker.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if self.broker is None:
            self.skipTest("mosquitto / mosquitto_passwd not installed")
        self.connection.write({"port": self.port, "password": WRONG})
        # Written now, not lazily inside a capture: the UPDATE itself shows the
        # value at Odoo's debug_sql level, as for any field (not ours to hide).
        self.env.flush_all()

    def assert_hidden(self, texts, *secrets):
        for text in texts:
            for secret in secrets:
                self.assertNotIn(secret, text)

    def test_a_refused_password_is_not_in_the_error_nor_the_log(self):
        conn = self.connection.with_user(self.manager)
        with capture_all_logs() as logged:
            with self.assertRaises(UserError) as caught:
                conn.action_test_connection()
        message = str(caught.exception)
        self.assertIn("not authorized", message)
        self.assertIn("Check username and password", message)
        self.assert_hidden([message, *logged], WRONG, GOOD)

    def test_the_right_password_is_not_in_the_answer_nor_the_log(self):
        self.connection.password = GOOD
        self.env.flush_all()
        conn = self.connection.with_user(self.manager)
        with capture_all_logs() as logged:
            answer = conn.action_test_connection()
        self.assertEqual(answer["params"]["type"], "success")
        self.assert_hidden([repr(answer), *logged], GOOD)

    def test_a_user_testing_the_connection_learns_no_secret(self):
        conn = self.connection.with_user(self.user)
        with capture_all_logs() as logged, self.assertRaises(UserError) as caught:
            conn.action_test_connection()
        self.assert_hidden([str(caught.exception), *logged], WRONG, "meter")

    def test_what_the_runner_holds_never_prints_the_password(self):
        info = load_connections(self.env)[self.connection.id]
        settings = info.settings
        self.assertEqual(settings.password, WRONG)
        texts = [repr(info), str(info), repr(settings)]
        untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
        untrusted.verify_message = "self-signed certificate"  # as ssl sets it
        for exc in (
            ConnectionRefusedError(111, "Connection refused"),
            TimeoutError("timed out"),
            untrusted,
            socket.gaierror(-2, "Name or service not known"),
            OSError(113, "No route to host"),
            ValueError("bad"),
        ):
            texts.append(describe_exception(exc, settings))
        self.assert_hidden(texts, WRONG)
        with_tls = ClientSettings(
            host="h", password=WRONG, tls_key_pem="KEY-PEM-SECRET", use_tls=True
        )
        self.assert_hidden([repr(with_tls)], WRONG, "KEY-PEM-SECRET")

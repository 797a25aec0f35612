# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A database runner without threads or a broker, for the runner's tests.

``DatabaseRunner.flusher.flush`` opens ``Registry(db).cursor()``, which test mode
turns into a cursor on the test's transaction; messages are handed to the
engine directly and acknowledgements land in a stand-in client.
"""

import json

from ....services.engine.batch import Batch
from ....services.mqtt.inbound import InboundMessage
from ....services.runner.config import load_connections, load_devices
from ....services.runner.database_runner import DatabaseRunner, _Owned
from ...common import WorkshopCase

T0 = 1_780_000_000.0


class FakeClient:
    """Stands in for the MQTT client: records acknowledgements."""

    def __init__(self):
        self.acked = []
        self.generation = 1
        self.connected = True
        self.stopped = False

    def ack_many(self, msgs):
        self.acked.extend(m.mid for m in msgs)
        return list(msgs)

    def stop(self):
        self.stopped = True


class RunnerCase(WorkshopCase):
    """One connection owned by a database runner, its machines loaded:
    ``device`` and ``other`` (a second machine on the same broker)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.device.write({"log_raw": True, "poll_interval_s": 0})
        cls.other = cls.make_device(
            "Laser", "shellypmminig3-665544332211", poll_interval_s=0, log_raw=True
        )
        cls.connection.runner_token = "token-1"

    def setUp(self):
        super().setUp()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        self.service = DatabaseRunner(self.env.cr.dbname)
        self.client = FakeClient()
        info = load_connections(self.env)[self.connection.id]
        self.service.owned[self.connection.id] = _Owned(
            self.connection.id, info, "token-1", self.client
        )
        self.service.owned[self.connection.id].state = "connected"
        engine = self.service.engine
        engine.add_connection(self.connection.id, "owm-test", discovery=True)
        engine.connection_up(self.connection.id, session_present=False)
        self.mid = 0
        self.batch = Batch()
        for cfg in load_devices(self.env, [self.connection.id]):
            engine.upsert_device(cfg, self.batch)

    def frame(self, ts, watts, prefix=None):
        prefix = prefix or self.device.topic_prefix
        self.mid += 1
        payload = json.dumps(
            {
                "src": prefix,
                "method": "NotifyStatus",
                "params": {"ts": ts, "pm1:0": {"apower": watts}},
            }
        ).encode()
        msg = InboundMessage(
            f"{prefix}/events/rpc", payload, 1, self.mid, False, False, ts, 1
        )
        self.service.engine.handle(self.connection.id, msg, self.batch)

    def flush(self):
        self.batch = self.service.flusher.flush(self.batch)
        self.env.invalidate_all()

    def sessions(self, device=None):
        return self.env["mqtt.session"].search(
            [("device_id", "=", (device or self.device).id)], order="start_ts"
        )

    def raw_rows(self, device, status):
        return self.env["mqtt.message"].search(
            [("device_id", "=", device.id), ("status", "=", status)]
        )

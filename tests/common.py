# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import contextlib
from unittest.mock import patch

from odoo.tests.common import TransactionCase, new_test_user

from ..services.engine.timebase import to_utc


class WorkshopCase(TransactionCase):
    """A workshop with one broker, one machine, a user and a manager."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.user = new_test_user(
            cls.env,
            login="owm_user",
            groups="base.group_user,open_workshop_mqtt.group_user",
        )
        cls.manager = new_test_user(
            cls.env,
            login="owm_manager",
            groups="base.group_user,open_workshop_mqtt.group_manager",
        )
        cls.connection = cls.env["mqtt.connection"].create(
            {
                "name": "Test broker",
                "host": "127.0.0.1",
                "port": 1883,
                "username": "meter",
                "password": "s3cret-pass",
                "auto_start": False,
            }
        )
        cls.device = cls.env["mqtt.device"].create(
            {
                "name": "Band saw",
                "connection_id": cls.connection.id,
                "topic_prefix": "shellypmminig3-aabbccddeeff",
                "machine_type": "saw",
            }
        )

    @classmethod
    def make_device(cls, name, prefix, **vals):
        return cls.env["mqtt.device"].create(
            dict(
                {
                    "name": name,
                    "connection_id": cls.connection.id,
                    "topic_prefix": prefix,
                },
                **vals,
            )
        )

    def make_session(self, device, start_ts, **vals):
        values = {
            "device_id": device.id,
            "start_ts": start_ts,
            "start_time": to_utc(start_ts),
            "last_update_ts": start_ts,
        }
        values.update(vals)
        if values.get("end_ts"):
            values.setdefault("end_time", to_utc(values["end_ts"]))
        return self.env["mqtt.session"].create(values)


def play_meter(env, connection, frames, max_rate=100_000):
    """Feed Shelly frames for ``connection``'s machines through the runner's
    engine and writer, in this test's transaction: their sessions, live
    fields and power history are what a runner would have written.

    ``frames``: (topic prefix, device time, watts), in order."""
    import json

    from ..services.engine.batch import Batch
    from ..services.engine.engine import Engine
    from ..services.mqtt.inbound import InboundMessage
    from ..services.runner.config import load_devices
    from ..services.runner.writer import write_batch

    connection.device_ids.write({"max_msg_rate": max_rate, "poll_interval_s": 0})
    engine = Engine()
    engine.add_connection(connection.id, "owm-test", discovery=False)
    engine.connection_up(connection.id, session_present=False)
    batch = Batch()
    for cfg in load_devices(env, [connection.id]):
        engine.upsert_device(cfg, batch)
    for mid, (prefix, ts, watts) in enumerate(frames, 1):
        payload = json.dumps(
            {
                "src": prefix,
                "method": "NotifyStatus",
                "params": {"ts": ts, "pm1:0": {"apower": watts}},
            }
        ).encode()
        msg = InboundMessage(
            f"{prefix}/events/rpc", payload, 1, mid, False, False, ts, 1
        )
        engine.handle(connection.id, msg, batch)
    engine.seal(batch)
    engine.committed(batch, write_batch(env, batch))
    env.invalidate_all()
    return engine


class ClosedSessions:
    """What ``trap_closed_sessions`` collected: one entry per hook call."""

    def __init__(self, env):
        self.env = env
        self.calls = []  # (origin, session ids, changes)

    def closed(self, origin=None):
        """The sessions closed (by ``origin``), in the order they closed."""
        ids = [
            sid
            for call_origin, sids, _changes in self.calls
            if origin is None or call_origin == origin
            for sid in sids
        ]
        return self.env["mqtt.session"].browse(ids)

    def changes(self):
        """Every ``SessionChange`` a recompute passed."""
        return [c for _origin, _sids, changes in self.calls for c in changes]

    def assert_closed(self, sessions, origin):
        """``sessions`` were closed by ``origin``, each exactly once."""
        ids = [s for o, sids, _c in self.calls if o == origin for s in sids]
        for session in sessions:
            count = ids.count(session.id)
            if count != 1:
                raise AssertionError(
                    f"session {session.id} closed {count} times by {origin!r}; "
                    f"calls: {self.calls}"
                )


@contextlib.contextmanager
def trap_closed_sessions(env):
    """Collect the sessions closed during the block with their origin, as
    OCA queue_job's ``trap_jobs()`` collects jobs: for an addon that reacts
    to closed sessions, in its own tests.  The hook still runs.

        from odoo.addons.open_workshop_mqtt.tests.common import (
            trap_closed_sessions,
        )

        with trap_closed_sessions(self.env) as trap:
            machine.action_stop_session()
        trap.assert_closed(session, "manual")
    """
    trap = ClosedSessions(env)
    Session = type(env["mqtt.session"])
    original = Session._on_sessions_closed

    def recording(self, origin, changes=()):
        result = original(self, origin, changes)
        trap.calls.append((origin, list(self.ids), list(changes)))
        return result

    with patch.object(Session, "_on_sessions_closed", recording):
        yield trap

# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
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

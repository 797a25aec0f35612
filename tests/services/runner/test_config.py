# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The runner's machines, read in SQL, are what the ORM reads."""

from ....parsers import meter_kind
from ....services.engine.types import DETECTOR_PARAMS, DetectorConfig
from ....services.runner.config import DEVICE_FIELDS, load_devices
from ...common import WorkshopCase

T0 = 1_780_000_000.0


class TestLoadDevices(WorkshopCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.second = cls.env["mqtt.connection"].create(
            {"name": "Second broker", "host": "127.0.0.1", "auto_start": False}
        )
        cls.odd = cls.make_device(
            "Generic meter",
            None,
            parser_type="generic_json",
            topic_pattern="plant/+/power",
            json_power_path="$.p",
            log_raw=False,
            max_msg_rate=3,
            poll_interval_s=0.0,
            sequence=1,
        )
        cls.lathe = cls.make_device(
            "Lathe",
            "shellyplus1pm-001122334455",
            component="switch:0",
            log_raw=True,
            max_msg_rate=7,
            poll_interval_s=12.5,
            standby_threshold_w=3.5,
            sequence=2,
        )
        cls.make_device("Old drill", "shellypmminig3-0000000000aa", active=False)
        cls.env["mqtt.device"].create(
            {
                "name": "Elsewhere",
                "connection_id": cls.second.id,
                "topic_prefix": "shellypmminig3-0000000000bb",
            }
        )

    def expected(self, connection_ids, running):
        """The configurations as the ORM reads the machines (search_read)."""
        rows = (
            self.env["mqtt.device"]
            .sudo()
            .search_read(
                [("connection_id", "in", connection_ids), ("active", "=", True)],
                DEVICE_FIELDS,
            )
        )
        out = []
        for r in rows:
            session = running.get(r["id"])
            out.append(
                (
                    r["id"],
                    r["name"],
                    r["connection_id"][0],
                    r["company_id"][0] if r["company_id"] else None,
                    r["parser_type"],
                    r["topic_prefix"] or None,
                    r["topic_pattern"] or None,
                    r["component"] or None,
                    DetectorConfig(**{p: r[p] for p in DETECTOR_PARAMS}),
                    {
                        name: r[name] or None
                        for _o, name in meter_kind(r["parser_type"]).option_fields
                    },
                    r["poll_interval_s"],
                    r["log_raw"],
                    r["max_msg_rate"],
                    session.id if session else None,
                    session.start_ts if session else None,
                )
            )
        return out

    @staticmethod
    def loaded(configs):
        return [
            (
                c.id,
                c.name,
                c.connection_id,
                c.company_id,
                c.parser_type,
                c.topic_prefix,
                c.topic_pattern,
                c.component,
                c.detector,
                c.options,
                c.poll_interval_s,
                c.log_raw,
                c.max_msg_rate,
                c.running_session_id,
                c.running_start_ts,
            )
            for c in configs
        ]

    def test_machines_load_as_the_orm_reads_them(self):
        session = self.make_session(self.lathe, T0)
        # Empty columns, as an administrator's SQL or an old row leaves them.
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE mqtt_device SET log_raw = NULL, max_msg_rate = NULL, "
            "poll_interval_s = NULL, company_id = NULL WHERE id = %s",
            (self.device.id,),
        )
        self.env.invalidate_all()
        configs = load_devices(self.env, [self.connection.id])
        want = self.expected([self.connection.id], {self.lathe.id: session})
        self.assertEqual(self.loaded(configs), want)
        # In the model's order (sequence first); archived machines and other
        # brokers' left out.
        self.assertEqual(
            [c.name for c in configs], ["Generic meter", "Lathe", "Band saw"]
        )
        saw = configs[-1]
        self.assertIs(saw.log_raw, False)
        self.assertEqual((saw.max_msg_rate, saw.poll_interval_s), (0, 0.0))
        self.assertEqual(configs[0].options["json_power_path"], "$.p")
        self.assertEqual(saw.company_id, None)
        self.assertEqual(configs[1].company_id, self.lathe.company_id.id)

    def test_what_the_transaction_wrote_is_read(self):
        """Read in SQL: the ORM's pending writes are flushed first."""
        self.lathe.write({"topic_prefix": "shellyplus1pm-99887766554f"})
        session = self.make_session(self.device, T0 + 5)
        configs = {
            c.id: c
            for c in load_devices(self.env, [self.connection.id, self.second.id])
        }
        self.assertEqual(
            configs[self.lathe.id].topic_prefix, "shellyplus1pm-99887766554f"
        )
        self.assertEqual(configs[self.device.id].running_session_id, session.id)
        self.assertEqual(configs[self.device.id].running_start_ts, T0 + 5)
        self.assertEqual(len(configs), 4)  # both brokers' active machines

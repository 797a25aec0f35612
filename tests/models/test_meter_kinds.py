# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Each kind of meter is one row of one table (``parsers.METER_KINDS``):
a kind declared only there is a choice of the machine form, shows the
form's fields for its kind, and is read by the runner."""

import json
from unittest.mock import patch

from odoo.tests import tagged

from ...parsers import FILTER, METER_KINDS, GenericJsonParser, MeterKind
from ...parsers.generic_parser import subscriptions
from ...services.engine.batch import Batch
from ...services.engine.engine import Engine
from ...services.mqtt.inbound import InboundMessage
from ...services.runner.config import load_devices
from ..common import WorkshopCase

TASMOTA = MeterKind(
    label="Tasmota (a kind declared only in the table)",
    parser=GenericJsonParser,
    subscriptions=subscriptions,
    addressing=FILTER,
    options=("power_path", "energy_path"),
    option_fields=(("power_path", "json_power_path"),),
)


@tagged("post_install", "-at_install")
class TestMeterKinds(WorkshopCase):
    def test_a_kind_declared_only_in_the_table_is_a_choice_and_is_read(self):
        with patch.dict(METER_KINDS, {"tasmota_test": TASMOTA}):
            Device = self.env["mqtt.device"].with_user(self.manager)
            choices = dict(
                Device.fields_get(["parser_type"])["parser_type"]["selection"]
            )
            self.assertEqual(choices["tasmota_test"], TASMOTA.label)
            machine = Device.create(
                {
                    "name": "Compressor",
                    "connection_id": self.connection.id,
                    "parser_type": "tasmota_test",
                    "topic_pattern": "tele/compressor/SENSOR",
                    "json_power_path": "ENERGY.Power",
                }
            )
            self.assertEqual(
                (machine.uses_prefix, machine.uses_component, machine.uses_options),
                (False, False, True),
            )
            self.assertFalse(machine.pollable)
            # The runner reads it from the same row.
            engine = Engine()
            engine.add_connection(self.connection.id, "owm-test", discovery=False)
            engine.connection_up(self.connection.id, session_present=False)
            batch = Batch()
            for cfg in load_devices(self.env, [self.connection.id]):
                engine.upsert_device(cfg, batch)
            self.assertIn(
                "tele/compressor/SENSOR", engine.subscriptions(self.connection.id)
            )
            payload = json.dumps({"ENERGY": {"Power": 730}}).encode()
            message = InboundMessage(
                "tele/compressor/SENSOR", payload, 1, 1, False, False, 1.78e9, 1
            )
            engine.handle(self.connection.id, message, batch)
            self.assertEqual(engine.devices[machine.id].state_machine.power_w, 730.0)
            self.assertEqual(engine.due_polls(), [])  # not pollable

    def test_the_form_follows_the_kind(self):
        for parser_type, flags in [
            ("shelly_gen2", (True, True, False, True)),
            ("shelly_gen1", (True, True, False, False)),
            ("generic_json", (False, False, True, False)),
        ]:
            with self.subTest(parser_type=parser_type):
                device = self.env["mqtt.device"].new({"parser_type": parser_type})
                self.assertEqual(
                    (
                        device.uses_prefix,
                        device.uses_component,
                        device.uses_options,
                        device.pollable,
                    ),
                    flags,
                )
                device.component = "x:9"
                device._onchange_parser_type()
                # A kind with channels starts on its usual one.
                default = METER_KINDS[parser_type].default_component
                self.assertEqual(device.component, default or "x:9")

    def test_any_gen2_component_is_a_channel(self):
        for component in ("cover:0", "cct:0", "rgbw:1", "cb:0"):
            with self.subTest(component=component):
                self.make_device(
                    f"Machine {component}",
                    f"shellyx-{component.replace(':', '')}",
                    component=component,
                )

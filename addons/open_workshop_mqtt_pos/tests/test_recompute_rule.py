# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A recompute never changes a charged session: it and whatever a replayed
session overlaps of it are left as they are, and the preview says so."""

import time

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.models import mqtt_session_recompute
from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc
from odoo.addons.open_workshop_mqtt.tests.common import play_meter

from .common import TillCase


@tagged("post_install", "-at_install")
class TestRecomputeLeavesChargedSessionsAlone(TillCase):
    def test_a_charged_session_stays_as_it_was_charged(self):
        # Two sessions split by a 20 s dip; a 30 s stop delay would join them.
        t0 = round(time.time()) - 3600.0
        watts = {
            **dict.fromkeys(range(10, 40, 5), 500.0),
            **dict.fromkeys(range(60, 90, 5), 500.0),
        }
        su = self.env(su=True)
        prefix = self.machine.topic_prefix
        play_meter(
            su,
            self.machine.connection_id,
            [(prefix, t0 + t, watts.get(t, 0.0)) for t in range(0, 200, 5)],
        )
        first, second = self.env["mqtt.session"].search(
            [("device_id", "=", self.machine.id)], order="start_ts"
        )
        (order,) = self.sync(self.order_data(first))
        before = first.read(["end_ts", "working_duration_s", "price"])[0]
        params = {name: self.machine[name] for name in mqtt_session_recompute.PARAMS}
        params["stop_debounce_s"] = 30.0
        wizard = su["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.machine.ids)],
                date_from=to_utc(t0 - 60),
                date_to=to_utc(t0 + 300),
            )
        )
        wizard.action_preview()
        self.assertGreaterEqual(wizard.machine_ids.left_alone, 1)
        wizard.action_apply()
        self.assertEqual(
            first.read(["end_ts", "working_duration_s", "price"])[0], before
        )
        self.assertTrue(second.exists(), "the session it would have joined stays too")
        self.assertEqual(first.pos_order_line_id, order.lines)
        # Once the charge is refunded, the recompute joins them.
        self.sync(self.order_data(None, refund_of=order.lines))
        again = su["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.machine.ids)],
                date_from=to_utc(t0 - 60),
                date_to=to_utc(t0 + 300),
            )
        )
        again.action_apply()
        self.assertFalse(second.exists())
        self.assertEqual(first.end_ts, t0 + 90)

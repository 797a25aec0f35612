# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A recompute never changes a charged session: it and whatever a replayed
session overlaps of it are left as they are, and the preview says so."""

import time
from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.models import mqtt_session_recompute
from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc
from odoo.addons.open_workshop_mqtt.tests.common import play_meter

from .common import TillCase


@tagged("post_install", "-at_install")
class TestRecomputeLeavesChargedSessionsAlone(TillCase):
    def recompute(self, t0):
        params = {name: self.machine[name] for name in mqtt_session_recompute.PARAMS}
        params["stop_debounce_s"] = 30.0  # would join the two sessions
        return self.env(su=True)["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.machine.ids)],
                date_from=to_utc(t0 - 60),
                date_to=to_utc(t0 + 300),
            )
        )

    def test_a_charged_session_stays_as_it_was_charged(self):
        # Two sessions split by a 20 s dip.
        t0 = round(time.time()) - 3600.0
        watts = {
            **dict.fromkeys(range(10, 40, 5), 500.0),
            **dict.fromkeys(range(60, 90, 5), 500.0),
        }
        prefix = self.machine.topic_prefix
        play_meter(
            self.env(su=True),
            self.machine.connection_id,
            [(prefix, t0 + t, watts.get(t, 0.0)) for t in range(0, 200, 5)],
        )
        first, second = self.env["mqtt.session"].search(
            [("device_id", "=", self.machine.id)], order="start_ts"
        )
        (order,) = self.sync(self.order_data(first))
        before = first.read(["end_ts", "working_duration_s", "price"])[0]
        # Without the rule the recompute would join them (the first changes).
        Wizard = type(self.env["mqtt.session.recompute"])
        with patch.object(Wizard, "_sessions_left_alone", lambda self, d: set()):
            unguarded = self.recompute(t0)
            unguarded.action_preview()
        self.assertIn(first, unguarded.line_ids.session_id)
        wizard = self.recompute(t0)
        wizard.action_preview()
        self.assertGreaterEqual(wizard.machine_ids.left_alone, 1)
        self.assertNotIn(first, wizard.line_ids.session_id)
        wizard.action_apply()
        after = first.read(["end_ts", "working_duration_s", "price"])[0]
        self.assertEqual(after, before)
        self.assertTrue(second.exists(), "the session it would have joined stays too")
        self.assertEqual(first.pos_order_line_id, order.lines)
        # Refunded, it is free to charge again and still named by its order
        # lines (their record of what was sold): a recompute leaves it too.
        self.sync(self.order_data(None, refund_of=order.lines))
        self.assertFalse(first.pos_charged)
        self.recompute(t0).action_apply()
        self.assertTrue(second.exists())
        self.assertEqual(first.end_ts, before["end_ts"])

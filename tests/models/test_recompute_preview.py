# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the recompute wizard tells a manager: settings filled from the
chosen machine (and a word when several differ), messages with the
settings' labels, the preview's summary first, a warning on a large change,
the changed sessions only unless asked, and a confirmation with numbers."""

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from ...models import mqtt_session_recompute
from ...services.engine.timebase import to_utc
from ...services.engine.types import DetectorConfig
from ..services.runner.common import T0, RunnerCase

PARAMS = mqtt_session_recompute.PARAMS


@tagged("post_install", "-at_install")
class TestRecomputePreview(RunnerCase):
    def test_opened_from_the_menu_it_starts_from_the_machines_settings(self):
        self.device.write({"standby_threshold_w": 35.0, "stop_debounce_s": 30.0})
        Wizard = self.env["mqtt.session.recompute"].with_user(self.manager)
        blank = Wizard.new(Wizard.default_get(list(Wizard._fields)))
        defaults = DetectorConfig()
        self.assertEqual(
            [blank[name] for name in PARAMS],
            [getattr(defaults, name) for name in PARAMS],
        )
        with Form(Wizard) as form:
            form.device_ids.add(self.device)
            self.assertEqual(form.standby_threshold_w, 35.0)
            self.assertEqual(form.stop_debounce_s, 30.0)
            self.assertFalse(form.settings_note)
            form.device_ids.add(self.other)
            self.assertIn("differ", form.settings_note)
            self.assertIn(self.device.name, form.settings_note)

    def test_a_bad_setting_is_said_with_its_label(self):
        wizard = (
            self.env["mqtt.session.recompute"]
            .with_user(self.manager)
            .create({"device_ids": [(6, 0, self.device.ids)]})
        )
        wizard.standby_threshold_w = 0.0
        with self.assertRaisesRegex(
            UserError, r"Standby Threshold \(W\) must be above 0"
        ):
            wizard.action_preview()

    def test_the_preview_sums_up_warns_and_confirms_with_numbers(self):
        # Sessions of 20 s working, each split from the next by a 20 s dip:
        # a 30 s stop delay joins them all into one.
        for k in range(0, 400, 5):
            self.frame(T0 + k, 500.0 if (k // 20) % 2 == 0 else 0.0)
        for k in range(400, 460, 5):
            self.frame(T0 + k, 0.0)
        self.flush()
        before = len(self.sessions())
        self.assertGreater(before, 5)
        params = {name: self.device[name] for name in PARAMS}
        params["stop_debounce_s"] = 30.0
        wizard = self.env["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.device.ids)],
                date_from=to_utc(T0 - 60),
                date_to=to_utc(T0 + 500),
            )
        )
        wizard.action_preview()
        self.assertIn(f"{before} → 1 sessions", wizard.summary)
        self.assertTrue(wizard.large_change)
        row = wizard.machine_ids
        self.assertEqual(row.sessions_text, f"{before} → 1")
        self.assertIn("1 changed", row.changes_text)
        # The changed ones only, unless asked for all.
        self.assertEqual(
            set(wizard.changed_line_ids.mapped("kind")), {"change", "vanish"}
        )
        wizard.action_ask_apply()
        self.assertEqual(wizard.state, "confirm")
        wizard.action_back_to_preview()
        self.assertEqual(wizard.state, "preview")
        wizard.action_ask_apply()
        wizard.action_apply()
        self.assertEqual(len(self.sessions()), 1)

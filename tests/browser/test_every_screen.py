# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every screen of the addon in a real browser, as a manager and as German staff.

every_screen.js opens every menu under the app's root that the user sees,
switches every view type of its action, switches every filter and group-by of
the search panel on and off, and opens the first record of a list or kanban.
Menus, views and filters are found at run time, so a new screen is covered as
soon as it exists.  Any error dialog, RPC error or console error fails the
test, with the menu, view and filter it happened in; all of them are listed,
not only the first.
"""

import json
import time
from pathlib import Path

from odoo.tests import HttpCase, tagged
from odoo.tests.common import new_test_user

from ...services.engine.timebase import to_utc

MODULE = "open_workshop_mqtt"
SCRIPT = (Path(__file__).parent / "every_screen.js").read_text(encoding="utf-8")


@tagged("post_install", "-at_install")
class TestEveryScreen(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        env["res.lang"]._activate_lang("de_DE")
        env["ir.module.module"]._load_module_terms([MODULE], ["de_DE"], overwrite=True)
        cls.manager = new_test_user(
            env,
            login="owm_screens_manager",
            groups=f"{MODULE}.group_manager",
            lang="en_US",
        )
        cls.staff = new_test_user(
            env,
            login="owm_screens_staff",
            groups=f"{MODULE}.group_user",
            lang="de_DE",
        )
        # Something to show in every view (and a record to open): a broker, a
        # machine, two closed sessions of the last hours (the default filters
        # show this week's), a raw message, a failed session reaction.
        env["mqtt.connection"].search([]).write({"auto_start": False})
        connection = env["mqtt.connection"].create(
            {"name": "Screens broker", "host": "127.0.0.1", "auto_start": False}
        )
        device = env["mqtt.device"].create(
            {
                "name": "Screens Saw",
                "connection_id": connection.id,
                "topic_prefix": "shellypmminig3-5c5c5c5c5c5c",
                "machine_type": "saw",
                "location": "Hall A",
            }
        )
        now = time.time()
        sessions = env["mqtt.session"]
        for start, length, reason in (
            (now - 4 * 3600, 5400, "power_drop"),
            (now - 3600, 900, "manual"),
        ):
            sessions |= env["mqtt.session"].create(
                {
                    "device_id": device.id,
                    "start_ts": start,
                    "start_time": to_utc(start),
                    "last_update_ts": start + length,
                    "end_ts": start + length,
                    "end_time": to_utc(start + length),
                    "state": "closed",
                    "end_reason": reason,
                    "working_duration_s": length * 0.8,
                    "standby_duration_s": length * 0.2,
                    "energy_wh": length / 10,
                }
            )
        env["mqtt.message"].create(
            {
                "connection_id": connection.id,
                "device_id": device.id,
                "company_id": device.company_id.id,
                "topic": f"{device.topic_prefix}/events/rpc",
                "payload": '{"params": {"pm1:0": {"apower": 650.0}}}',
                "payload_size": 40,
                "qos": 1,
                "received_at": to_utc(now - 60),
                "device_ts": now - 60,
                "status": "reading",
                "power_w": 650.0,
            }
        )
        env["mqtt.session.hook.failure"].create(
            {
                "session_ids": [(6, 0, sessions.ids)],
                "device_id": device.id,
                "origin": "runner",
                "error": "ValueError: a downstream addon failed",
                "detail": "Traceback (most recent call last): ...",
            }
        )

    def walk_every_screen(self, login, label, lang=None):
        options = {
            "rootMenu": f"{MODULE}.workshop_menu_root",
            "label": label,
            "lang": lang,
            "budgetMs": 100_000,
            "idleMs": 10_000,
        }
        # Handed over as an attachment: browser_js repeats its code in a
        # failure's message, where the script would bury the problems.
        script = self.env["ir.attachment"].create(
            {"name": "every_screen.js", "raw": SCRIPT.encode(), "public": True}
        )
        run = f"(0, eval)(text); return owmEveryScreen({json.dumps(options)});"
        self.browser_js(
            "/odoo",
            f"fetch('/web/content/{script.id}')"
            ".then((r) => (r.ok ? r.text() : Promise.reject(new Error(r.statusText))))"
            f".then((text) => {{ {run} }})",
            ready="odoo.isReady === true",
            login=login,
            timeout=150,
        )

    def test_every_screen_as_manager(self):
        self.walk_every_screen(self.manager.login, "manager")

    def test_every_screen_as_german_staff(self):
        self.walk_every_screen(self.staff.login, "German staff", lang="de_DE")

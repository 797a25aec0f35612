# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Two tills add the same session at the same moment: one holds it, the
other is told.  Real transactions on real connections, each call through
Odoo's RPC retry (a serialization failure is retried, as a till's request
is).  Committed data, removed again at the end."""

import threading
from functools import partial

from odoo import api
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tests import BaseCase, get_db_name, tagged

from .common import T0, _utc

TILLS = 4
ROUNDS = 6
WAIT_S = 30


@tagged("post_install", "-at_install")
class TestTwoTillsAtOnce(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            admin = env.ref("base.user_admin")
            config = env.ref("point_of_sale.pos_config_main", raise_if_not_found=False)
            if not config:
                raise AssertionError("the test database has no demo shop")
            env = env(user=admin)
            config = config.with_env(env)
            if config.current_session_id:
                raise AssertionError("the demo shop has an open session")
            config.open_ui()
            till = config.current_session_id
            till.set_opening_control(0, None)
            product = (
                env["product.product"]
                .sudo()
                .create(
                    {"name": "Race time", "type": "service", "available_in_pos": True}
                )
            )
            connection = (
                env["mqtt.connection"]
                .sudo()
                .create(
                    {"name": "Race broker", "host": "127.0.0.1", "auto_start": False}
                )
            )
            machine = (
                env["mqtt.device"]
                .sudo()
                .create(
                    {
                        "name": "Race laser",
                        "connection_id": connection.id,
                        "topic_prefix": "shellypmminig3-00000000ace2",
                        "pos_product_id": product.id,
                    }
                )
            )
            cls.ids = {
                "till": till.id,
                "product": product.id,
                "connection": connection.id,
                "machine": machine.id,
            }
        cls.addClassCleanup(cls.remove)

    @classmethod
    def remove(cls):
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {}, su=True)
            env["mqtt.session"].search(
                [("device_id", "=", cls.ids["machine"])]
            ).unlink()
            env["pos.session"].browse(cls.ids["till"]).unlink()
            env["mqtt.device"].browse(cls.ids["machine"]).unlink()
            env["mqtt.connection"].browse(cls.ids["connection"]).unlink()
            env["product.product"].browse(cls.ids["product"]).unlink()

    def new_session(self, n):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            start = T0 + n * 10_000
            session = (
                env["mqtt.session"]
                .sudo()
                .create(
                    {
                        "device_id": self.ids["machine"],
                        "start_ts": start,
                        "start_time": _utc(start),
                        "end_ts": start + 600,
                        "end_time": _utc(start + 600),
                        "last_update_ts": start + 600,
                        "working_duration_s": 540.0,
                        "state": "closed",
                        "end_reason": "power_drop",
                    }
                )
            )
            return session.id

    def reserve(self, session_id, uuid, start, results, errors):
        """One till's request, in its own transaction."""
        try:
            start.wait(WAIT_S)
            with self.registry.cursor() as cr:
                env = api.Environment(cr, self.admin_id(cr), {})
                session = env["mqtt.session"].browse(session_id)
                call = partial(session.pos_reserve, uuid, self.ids["till"])
                results[uuid] = retrying(call, env)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def admin_id(self, cr):
        return api.Environment(cr, api.SUPERUSER_ID, {}).ref("base.user_admin").id

    def test_one_till_holds_it(self):
        for round_ in range(ROUNDS):
            session_id = self.new_session(round_)
            start = threading.Barrier(TILLS)
            results, errors = {}, []
            threads = [
                threading.Thread(
                    target=self.reserve,
                    args=(session_id, f"order-{round_}-{n}", start, results, errors),
                )
                for n in range(TILLS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT_S)
            self.assertFalse([t for t in threads if t.is_alive()], "a till hangs")
            self.assertEqual(errors, [])
            winners = [uuid for uuid, r in results.items() if r["reserved"]]
            self.assertEqual(len(winners), 1, f"round {round_}: {results}")
            losers = [r for r in results.values() if not r["reserved"]]
            self.assertEqual(len(losers), TILLS - 1)
            for loser in losers:
                self.assertIn("another till", loser["refused"][0]["reason"])
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT pos_reserved_uuid FROM mqtt_session WHERE id = %s",
                    (session_id,),
                )
                self.assertEqual(cr.fetchone()[0], winners[0])

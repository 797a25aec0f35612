# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Two workshops (companies) in one database: a user of the other company
sees none of this workshop's brokers, machines, sessions and raw messages,
whichever way the ORM is asked, and cannot act on them by id."""

import time

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..common import WorkshopCase

MODELS = ("mqtt.connection", "mqtt.device", "mqtt.session", "mqtt.message")
MANAGERS_ONLY = ("mqtt.message",)  # the raw log
MANAGER = "open_workshop_mqtt.group_manager"


@tagged("post_install", "-at_install")
class TestCompanyIsolation(WorkshopCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Other workshop"})
        groups = "base.group_user,open_workshop_mqtt.group_manager"
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_manager_b",
            groups=groups,
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.user_b = new_test_user(
            cls.env,
            login="owm_user_b",
            groups="base.group_user,open_workshop_mqtt.group_user",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        # Member of both, working in B only (the company switcher).
        cls.both = new_test_user(
            cls.env,
            login="owm_manager_ab",
            groups=groups,
            company_id=cls.company_b.id,
            company_ids=[(6, 0, (cls.company_a | cls.company_b).ids)],
        )
        now = time.time()
        cls.closed = cls.env["mqtt.session"].create(
            {
                "device_id": cls.device.id,
                "start_ts": now - 3600,
                "start_time": "2026-01-01 10:00:00",
                "end_ts": now - 1800,
                "end_time": "2026-01-01 10:30:00",
                "state": "closed",
                "working_duration_s": 1800.0,
                "end_reason": "power_drop",
            }
        )
        cls.running = cls.env["mqtt.session"].create(
            {
                "device_id": cls.device.id,
                "start_ts": now - 60,
                "start_time": "2026-01-01 11:00:00",
                "last_update_ts": now - 60,
            }
        )
        cls.device.running_session_id = cls.running
        cls.message = cls.env["mqtt.message"].create(
            {
                "device_id": cls.device.id,
                "connection_id": cls.connection.id,
                "company_id": cls.company_a.id,
                "topic": f"{cls.device.topic_prefix}/events/rpc",
                "payload": "{}",
                "status": "reading",
            }
        )
        cls.records = {
            "mqtt.connection": cls.connection,
            "mqtt.device": cls.device,
            "mqtt.session": cls.closed | cls.running,
            "mqtt.message": cls.message,
        }

    def outsiders(self):
        in_b = dict(self.env.context, allowed_company_ids=self.company_b.ids)
        return [
            ("manager of B", self.env(user=self.manager_b)),
            ("user of B", self.env(user=self.user_b)),
            ("member of A and B, working in B", self.env(user=self.both, context=in_b)),
        ]

    def test_the_other_company_sees_nothing(self):
        for who, env in self.outsiders():
            for model in MODELS:
                records = self.records[model]
                Model = env[model]
                with self.subTest(who=who, model=model):
                    if model in MANAGERS_ONLY and not env.user.has_group(MANAGER):
                        # Staff have no access to it at all, whatever company.
                        with self.assertRaises(AccessError):
                            Model.search([])
                        continue
                    self.assertFalse(Model.search([]))
                    self.assertEqual(Model.search_count([]), 0)
                    self.assertFalse(Model.search([("id", "in", records.ids)]))
                    self.assertFalse(Model.name_search(""))
                    self.assertEqual(Model.search_read([], ["id"]), [])
                    self.assertEqual(Model._read_group([], [], ["__count"]), [(0,)])
                    groups = Model.read_group([], ["id:count"], [])
                    self.assertFalse(groups and groups[0].get("__count"))
                    self.assertEqual(Model.web_search_read([], {"id": {}})["length"], 0)
                    with self.assertRaises(AccessError):
                        Model.browse(records.ids).read(["id"])
                    with self.assertRaises(AccessError):
                        Model.browse(records.ids).web_read({"display_name": {}})
        # ... and the owning company's user sees them all.
        for model in MODELS:
            own = self.env[model].with_user(self.manager)
            records = self.records[model]
            self.assertEqual(
                own.search_count([("id", "in", records.ids)]), len(records)
            )

    def test_no_way_round_through_related_records(self):
        env = self.env(user=self.manager_b)
        # A machine of B may not point at A's broker; A's machine is not
        # reachable through a broker of B either.
        broker_b = env["mqtt.connection"].create(
            {"name": "B broker", "host": "127.0.0.1", "auto_start": False}
        )
        self.assertFalse(broker_b.device_ids)
        self.assertFalse(
            env["mqtt.device"].search([("connection_id", "=", self.connection.id)])
        )
        self.assertFalse(
            env["mqtt.session"].search([("device_id.name", "=", self.device.name)])
        )

    def test_the_dashboard_of_the_other_company_is_empty(self):
        for who, env in self.outsiders():
            with self.subTest(who=who):
                data = env["mqtt.dashboard"].get_data("year")
                text = repr(data)
                self.assertNotIn(self.device.name, text)
                self.assertEqual(data["kpis"]["running"], 0)

    def _assert_buttons_refused(self, calls):
        for who, env in self.outsiders():
            for model, rec_id, method in calls:
                with self.subTest(who=who, call=method):
                    record = env[model].browse(rec_id)
                    with self.assertRaises(AccessError):
                        getattr(record, method)()
        self.assertEqual(self.running.state, "running")
        self.assertEqual(self.device.running_session_id, self.running)
        self.assertFalse(self.connection.run_requested)

    def test_buttons_that_write_refuse_the_other_company(self):
        self._assert_buttons_refused(
            [
                ("mqtt.connection", self.connection.id, "action_start"),
                ("mqtt.connection", self.connection.id, "action_stop"),
                ("mqtt.device", self.device.id, "action_confirm_discovered"),
            ]
        )

    def test_buttons_with_superuser_rights_refuse_the_other_company(self):
        self._assert_buttons_refused(
            [
                ("mqtt.connection", self.connection.id, "action_test_connection"),
                ("mqtt.device", self.device.id, "action_start_session"),
                ("mqtt.device", self.device.id, "action_stop_session"),
                ("mqtt.session", self.running.id, "action_stop"),
            ]
        )

    def test_a_machine_of_b_cannot_use_the_broker_of_a(self):
        env = self.env(user=self.manager_b)
        with self.assertRaises(UserError):  # Odoo's company check
            env["mqtt.device"].create(
                {
                    "name": "Listens in",
                    "connection_id": self.connection.id,
                    "parser_type": "generic_json",
                    "topic_pattern": "#",
                }
            )
        self.assertEqual(self.connection.device_ids, self.device)

    def test_a_recompute_plan_cannot_be_forged(self):
        """A manager of B writes a plan naming A's machine and chunks into
        their own wizard: refused, and a replay names only its own machines."""
        env = self.env(user=self.manager_b)
        machine_b = env["mqtt.device"].create(
            {
                "name": "B's saw",
                "connection_id": env["mqtt.connection"]
                .create({"name": "B broker", "auto_start": False})
                .id,
                "topic_prefix": "shellypmminig3-0b0b0b0b0b0b",
            }
        )
        wizard = env["mqtt.session.recompute"].create(
            {"device_ids": [(6, 0, machine_b.ids)]}
        )
        plan = {
            "machines": [{"device": self.device.id, "chunks": [], "done": 0}],
            "total": 1,
            "done": 0,
        }
        with self.assertRaises(AccessError):
            wizard.write({"step_state": plan})
        created = env["mqtt.session.recompute"].create(
            {"device_ids": [(6, 0, machine_b.ids)], "step_state": plan}
        )
        self.assertFalse(created.sudo().step_state)  # the client's is ignored
        # Written past the ORM all the same: the replay refuses the machine.
        wizard.sudo().step_state = plan
        with self.assertRaises(AccessError):
            wizard.action_preview_step()
        # Nor can A's machines be named in the wizard itself.
        with self.assertRaises(AccessError):
            wizard.write({"device_ids": [(6, 0, self.device.ids)]})

    def test_a_wizard_is_its_makers(self):
        mine = (
            self.env["mqtt.session.recompute"]
            .with_user(self.manager)
            .create({"device_ids": [(6, 0, self.device.ids)]})
        )
        other = self.env(user=self.both, context={"allowed_company_ids": [1]})
        with self.assertRaises(AccessError):
            other["mqtt.session.recompute"].browse(mine.id).action_preview()

    def test_staff_do_not_read_the_raw_log(self):
        for user in (self.user, self.user_b):
            with self.assertRaises(AccessError):
                self.env["mqtt.message"].with_user(user).search([])

    def test_staff_do_not_learn_where_the_broker_is(self):
        conn = self.connection.with_user(self.user)
        self.assertEqual(conn.name, "Test broker")
        for field in ("host", "port", "client_id", "owner_node"):
            with self.subTest(field=field), self.assertRaises(AccessError):
                conn.read([field])
        self.assertNotIn("client_id", conn.read()[0])

    def test_an_archived_machine_starts_no_session(self):
        self.device.running_session_id = False
        self.running.state = "closed"
        self.device.active = False
        with self.assertRaises(UserError):
            self.device.with_user(self.user).action_start_session()
        self.assertFalse(
            self.env["mqtt.session"].search(
                [("device_id", "=", self.device.id), ("state", "=", "running")]
            )
        )

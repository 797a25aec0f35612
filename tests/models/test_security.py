# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from ..common import WorkshopCase

SECRETS = ("password", "username", "tls_ca_cert", "tls_client_cert", "tls_client_key")


@tagged("post_install", "-at_install")
class TestSecurity(WorkshopCase):
    def test_user_cannot_read_broker_credentials(self):
        conn = self.connection.with_user(self.user)
        self.assertEqual(conn.name, "Test broker")
        for field in SECRETS:
            with self.subTest(field=field), self.assertRaises(AccessError):
                conn.read([field])
        # A plain read of all fields (what RPC clients do) leaves them out.
        data = conn.read()[0]
        for field in SECRETS:
            self.assertNotIn(field, data)
        self.assertNotIn("password", conn.fields_get())
        # Nor can a user search on it to guess it.
        with self.assertRaises(AccessError):
            self.env["mqtt.connection"].with_user(self.user).search(
                [("password", "=", "s3cret-pass")]
            )

    def test_manager_reads_credentials(self):
        conn = self.connection.with_user(self.manager)
        self.assertEqual(conn.read(["password"])[0]["password"], "s3cret-pass")

    def test_password_is_not_in_the_user_form(self):
        arch = (
            self.env["mqtt.connection"]
            .with_user(self.user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertNotIn('name="password"', arch)
        arch = (
            self.env["mqtt.connection"]
            .with_user(self.manager)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertIn('name="password"', arch)

    def test_user_reads_but_does_not_configure_machines(self):
        device = self.device.with_user(self.user)
        self.assertEqual(device.current_state, "idle")
        with self.assertRaises(AccessError):
            device.write({"standby_threshold_w": 50})
        with self.assertRaises(AccessError):
            device.unlink()
        with self.assertRaises(AccessError):
            self.env["mqtt.session"].with_user(self.user).create(
                {
                    "device_id": self.device.id,
                    "start_ts": 1.0,
                    "start_time": "2026-01-01",
                }
            )

    def test_managers_may_export_users_may_not(self):
        self.assertTrue(self.manager.has_group("base.group_allow_export"))
        self.assertFalse(self.user.has_group("base.group_allow_export"))

    def test_manager_configures_machines(self):
        self.device.with_user(self.manager).write({"standby_threshold_w": 50})
        self.assertEqual(self.device.standby_threshold_w, 50)

    def test_other_company_sees_nothing(self):
        company_b = self.env["res.company"].create({"name": "Other workshop"})
        user_b = new_test_user(
            self.env,
            login="owm_user_b",
            groups="base.group_user,open_workshop_mqtt.group_manager",
            company_id=company_b.id,
            company_ids=[(6, 0, company_b.ids)],
        )
        session = self.make_session(self.device, 1_780_000_000.0)
        self.env["mqtt.message"].create(
            {
                "device_id": self.device.id,
                "company_id": self.env.company.id,
                "topic": "t",
            }
        )
        for model in ("mqtt.connection", "mqtt.device", "mqtt.session", "mqtt.message"):
            with self.subTest(model=model):
                self.assertEqual(self.env[model].with_user(user_b).search_count([]), 0)
        with self.assertRaises(AccessError):
            session.with_user(user_b).read(["start_time"])
        # The user of the owning company sees them.
        self.assertEqual(
            self.env["mqtt.session"].with_user(self.user).search_count([]), 1
        )

    def test_demo_users_have_their_groups(self):
        staff = self.env.ref(
            "open_workshop_mqtt.demo_user_staff", raise_if_not_found=False
        )
        if not staff:
            self.skipTest("demo data not installed")
        self.assertTrue(staff.has_group("open_workshop_mqtt.group_user"))
        self.assertFalse(staff.has_group("open_workshop_mqtt.group_manager"))
        lead = self.env.ref("open_workshop_mqtt.demo_user_manager")
        self.assertTrue(lead.has_group("open_workshop_mqtt.group_manager"))
        self.assertTrue(lead.has_group("open_workshop_mqtt.group_user"))

# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method of the addon's models has a written rule and keeps it.

The walk finds the methods by itself (every public method that one of the
addon's classes defines, on every model it defines or extends), so a new
button without a rule fails here on its own.  Each is called

* as a user of this company without any workshop group, and
* as a workshop manager of another company, on this company's records,

and must refuse (AccessError, or the company check's UserError) without
having written anything first: the tables of the addon are compared before
and after each call, inside a savepoint that is rolled back (but for
``create``, whose record rules Odoo checks after the insert; the refusal
rolls the transaction back).
"""

import inspect

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ...models.rights import FRAMEWORK
from ..common import WorkshopCase

ADDON = "odoo.addons.open_workshop_mqtt."
TABLES = (
    "mqtt_connection",
    "mqtt_device",
    "mqtt_session",
    "mqtt_message",
    "mqtt_power_chunk",
    "mqtt_session_recompute",
    "mqtt_session_recompute_log",
    "res_company",
)
# Arguments of the methods that take some (a new button takes none).
ARGS = {
    "write": ({"name": "Taken over"},),
    "get_power_curve": (),
    "default_get": (["device_ids", "standby_threshold_w"],),
    "get_data": ("year",),
}


def public_methods(env):
    """{(model, method name): the addon's function} over the registry."""
    found = {}
    for name in env.registry:
        cls = type(env[name])
        for klass in cls.__mro__:
            if not klass.__module__.startswith(ADDON):
                continue
            for attr, value in vars(klass).items():
                if attr.startswith("_") or attr in FRAMEWORK:
                    continue
                if inspect.isfunction(value):
                    found.setdefault((name, attr), value)
    return found


@tagged("post_install", "-at_install")
class TestEveryPublicMethodKeepsItsRule(WorkshopCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "Other workshop"})
        cls.outsider = new_test_user(
            cls.env, login="owm_outsider", groups="base.group_user"
        )
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_manager_of_b",
            groups="base.group_user,open_workshop_mqtt.group_manager",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.device.fault = "a fault to dismiss"
        cls.session = cls.make_session(cls, cls.device, 1_780_000_000.0)
        cls.device.running_session_id = cls.session
        cls.wizard = (
            cls.env["mqtt.session.recompute"]
            .with_user(cls.manager)
            .create({"device_ids": [(6, 0, cls.device.ids)]})
        )
        failure = cls.env["mqtt.session.hook.failure"]._record(
            cls.session, "runner", [], ValueError("an addon's bug")
        )
        settings = cls.env["mqtt.workshop.settings"].with_user(cls.manager).create({})
        # Records of this company, per model, that a method is called on.
        cls.records = {
            "mqtt.connection": cls.connection,
            "mqtt.device": cls.device,
            "mqtt.session": cls.session,
            "mqtt.session.recompute": cls.wizard,
            "mqtt.session.hook.failure": failure,
            "mqtt.workshop.settings": settings,
        }
        # Values that would tie a new record of another company to ours.
        cls.create_values = {
            "mqtt.connection": {"name": "Into A", "company_id": cls.env.company.id},
            "mqtt.device": {
                "name": "Into A's broker",
                "connection_id": cls.connection.id,
                "topic_prefix": "shellypmminig3-0a0b0c0d0e0f",
            },
            "mqtt.session.recompute": {"device_ids": [(6, 0, cls.device.ids)]},
        }

    def fingerprint(self):
        self.env.flush_all()
        prints = []
        for table in TABLES:
            self.env.cr.execute(
                f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) "  # noqa: S608
                f"FROM {table} t"
            )
            prints.append(self.env.cr.fetchone()[0])
        return prints

    def call(self, user, model, method):
        """Call ``method`` as ``user``; return what it raised (None: it
        returned).  Whatever it wrote is rolled back."""
        env = self.env(user=user)
        before = self.fingerprint()
        with self.env.cr.savepoint() as savepoint:
            try:
                if method == "create":
                    values = self.create_values.get(model, {})
                    env[model].create([values])
                elif model in self.records:
                    target = self.records[model].with_env(env)
                    getattr(target, method)(*ARGS.get(method, ()))
                else:
                    getattr(env[model], method)(*ARGS.get(method, ()))
            except (AccessError, UserError) as exc:
                raised = exc
            else:
                raised = None
            if method != "create":
                # (Odoo checks the record rules of a new record after its
                # insert; the refusal rolls the transaction back.)
                self.assertEqual(
                    self.fingerprint(),
                    before,
                    f"{model}.{method} wrote something for {user.login}",
                )
            savepoint.rollback()
        self.env.invalidate_all()
        return raised

    def test_every_public_method_has_a_written_rule(self):
        methods = public_methods(self.env)
        # The walk sees the buttons it must (a sanity check of the walk).
        for known in [
            ("mqtt.device", "action_start_session"),
            ("mqtt.connection", "action_start"),
            ("mqtt.session.recompute", "action_apply"),
            ("mqtt.dashboard", "get_data"),
        ]:
            self.assertIn(known, methods)
        missing = sorted(
            f"{model}.{name}"
            for (model, name), func in methods.items()
            if not hasattr(func, "owm_rule")
        )
        self.assertEqual(missing, [], "public methods without a written rule")

    def test_no_method_acts_for_a_user_without_its_group(self):
        for (model, method), _func in sorted(public_methods(self.env).items()):
            with self.subTest(method=f"{model}.{method}"):
                raised = self.call(self.outsider, model, method)
                self.assertIsInstance(raised, AccessError)

    def test_no_method_acts_for_a_manager_of_another_company(self):
        for (model, method), func in sorted(public_methods(self.env).items()):
            _group, access = func.owm_rule
            if access is None:
                continue  # reads with the caller's rights: checked below
            with self.subTest(method=f"{model}.{method}"):
                # A record of this company to call it on (a new model needs one).
                self.assertTrue(method == "create" or model in self.records, model)
                raised = self.call(self.manager_b, model, method)
                self.assertIsNotNone(raised)

    def test_methods_without_records_show_another_company_nothing(self):
        env = self.env(user=self.manager_b)
        data = env["mqtt.dashboard"].get_data("year")
        self.assertNotIn(self.device.name, repr(data))
        self.assertEqual(data["kpis"]["running"], 0)
        wizard = env["mqtt.session.recompute"].with_context(
            active_model="mqtt.device", active_ids=self.device.ids
        )
        with self.assertRaises(AccessError):
            wizard.default_get(["device_ids", "standby_threshold_w"])
        # Every such method is named here: a new one needs its own check.
        model_level = sorted(
            f"{model}.{name}"
            for (model, name), func in public_methods(self.env).items()
            if func.owm_rule[1] is None
        )
        self.assertEqual(
            model_level,
            ["mqtt.dashboard.get_data", "mqtt.session.recompute.default_get"],
        )

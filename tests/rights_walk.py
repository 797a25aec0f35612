# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The walk over an addon's public methods (tests/models/test_rights.py),
for this addon and for the addons built on it (the bridges walk theirs).

Every public method that one of the addon's classes defines, on every model
it defines or extends, is called

* as a user of this company without any workshop group, and
* as a workshop manager of another company, on this company's records,

and must refuse (AccessError, or the company check's UserError) without
having written anything first: the addon's tables are compared before and
after each call, inside a savepoint that is rolled back (but for
``create``, whose record rules Odoo checks after the insert; the refusal
rolls the transaction back).  A case mixes ``RightsWalk`` in before its
``TransactionCase`` and says ``ADDON``, ``TABLES``, ``KNOWN``, ``ARGS``,
``records`` and ``create_values``.
"""

import inspect

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user
from odoo.tools import SQL

from ..models.rights import FRAMEWORK


def public_methods(env, addon):
    """{(model, method name): the function} of ``addon``'s classes over the
    registry (``addon``: its module path, "odoo.addons.<name>.")."""
    found = {}
    for name in env.registry:
        cls = type(env[name])
        for klass in cls.__mro__:
            if not klass.__module__.startswith(addon):
                continue
            for attr, value in vars(klass).items():
                if attr.startswith("_") or attr in FRAMEWORK:
                    continue
                if inspect.isfunction(value):
                    found.setdefault((name, attr), value)
    return found


class RightsWalk:
    """The walk's tests; see the module's docstring."""

    ADDON = ""  # "odoo.addons.<name>."
    TABLES = ()  # the tables whose rows a refused call must not change
    KNOWN = ()  # (model, method) the walk must find: a check of the walk
    ARGS = {}  # method -> its arguments (a button takes none)
    # Set in setUpClass: a user without workshop groups, a manager of
    # another company, this company's records per model, and the values
    # that would tie a new record of another company to ours.
    outsider = manager_b = None
    records = create_values = None

    @classmethod
    def make_walkers(cls, manager_groups=""):
        """The two users the walk calls as (for setUpClass): ``outsider``, of
        this company without any workshop group, and ``manager_b``, a
        workshop manager (plus ``manager_groups``, comma-separated) of
        another company, ``company_b``."""
        cls.company_b = cls.env["res.company"].create({"name": "Other workshop"})
        cls.outsider = new_test_user(
            cls.env, login="owm_outsider", groups="base.group_user"
        )
        groups = "base.group_user,open_workshop_mqtt.group_manager"
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_manager_of_b",
            groups=f"{groups},{manager_groups}" if manager_groups else groups,
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )

    def methods(self):
        return public_methods(self.env, self.ADDON)

    def fingerprint(self):
        self.env.flush_all()
        prints = []
        for table in self.TABLES:
            self.env.cr.execute(
                SQL(
                    "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) "
                    "FROM %s t",
                    SQL.identifier(table),
                )
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
                    getattr(target, method)(*self.ARGS.get(method, ()))
                else:
                    getattr(env[model], method)(*self.ARGS.get(method, ()))
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
        methods = self.methods()
        # The walk sees the buttons it must (a sanity check of the walk).
        for known in self.KNOWN:
            self.assertIn(known, methods)
        missing = sorted(
            f"{model}.{name}"
            for (model, name), func in methods.items()
            if not hasattr(func, "owm_rule")
        )
        self.assertEqual(missing, [], "public methods without a written rule")

    def test_no_method_acts_for_a_user_without_its_group(self):
        for (model, method), func in sorted(self.methods().items()):
            if func.owm_rule[0] is None:
                continue  # another addon's model, with its own rights
            with self.subTest(method=f"{model}.{method}"):
                raised = self.call(self.outsider, model, method)
                self.assertIsInstance(raised, AccessError)

    def test_no_method_acts_for_a_manager_of_another_company(self):
        for (model, method), func in sorted(self.methods().items()):
            _group, access = func.owm_rule
            if access is None:
                continue  # reads with the caller's rights: checked below
            with self.subTest(method=f"{model}.{method}"):
                # A record of this company to call it on (a new model needs one).
                self.assertTrue(method == "create" or model in self.records, model)
                raised = self.call(self.manager_b, model, method)
                self.assertIsNotNone(raised)

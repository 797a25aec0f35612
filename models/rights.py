# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Who may call what: one written rule per public method of the addon's models.

Every public method (a button, a call of the web client, an RPC endpoint)
carries its rule, ``@guarded(group, access)``: the caller must be in
``group``, and may ``access`` every record the method is called on (Odoo's
access rights and record rules, so another company's records are refused).
The rule is checked before the method's body, so before any ``sudo()`` in
it.  ``tests/models/test_rights.py`` walks every public method of the
addon's models: a method without a rule fails, and so does one that acts
for a user without its group or for a user of another company.

The ORM's own entry points (``read``, ``search``, ...) keep Odoo's access
rights and record rules; an override of ``create``, ``write`` or
``unlink`` here carries a rule too, because it may act before ``super()``.
"""

import functools

from odoo import _
from odoo.exceptions import AccessError

USER = "open_workshop_mqtt.group_user"
MANAGER = "open_workshop_mqtt.group_manager"

# Public by name, called by the ORM itself as superuser, never a user's
# action: no rule of ours.
FRAMEWORK = frozenset({"init"})


def guarded(group, access="read"):
    """The rule of a public method: callers need ``group`` and ``access``
    ("read", "write", "create", "unlink"; None: no records to check, the
    method reads with the caller's rights) to every record it is called on.

    ``group`` None: an override of another addon's model keeps that model's
    own rights (a maintenance request's ``write``), and says so."""

    def decorate(method):
        @functools.wraps(method)
        def checked(self, *args, **kwargs):
            check(self, group, access)
            return method(self, *args, **kwargs)

        checked.owm_rule = (group, access)
        return checked

    return decorate


def check(records, group, access="read"):
    """Raise AccessError unless the caller is in ``group`` and may ``access``
    every one of ``records`` (companies included)."""
    env = records.env
    if env.su:
        return
    if group and not env.user.has_group(group):
        raise AccessError(
            _(
                "You need the workshop group '%(group)s' for this.",
                group=env.ref(group).full_name,
            )
        )
    if access:
        records.check_access(access)

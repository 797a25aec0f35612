"""Tests of the models under Odoo (pytest-odoo): fields, rules, access, i18n."""

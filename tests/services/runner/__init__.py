"""Tests of ``services/runner`` under Odoo (pytest-odoo): writer, flush policy."""

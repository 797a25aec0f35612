"""The browser tour (Odoo's test runner: it needs Odoo's HTTP server)."""

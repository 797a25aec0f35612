# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""German user interface: i18n/de.po is complete and Odoo loads it.

The first users are German workshop staff: every term of the template
(i18n/open_workshop_mqtt.pot) must have a German translation that keeps the
placeholders and the markup, and field labels, selection values, views, menus,
validation messages and the web client's strings must come out in German.
"""

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools.translate import code_translations

from ...services.mqtt.connect import ClientSettings
from ...services.mqtt.texts import describe_exception, retrying
from ..common import WorkshopCase
from ..i18n_catalog import GermanCatalog

MODULE = "open_workshop_mqtt"
LANG = "de_DE"


@tagged("post_install", "-at_install")
class TestGermanCatalog(GermanCatalog, WorkshopCase):
    MODULE = MODULE


@tagged("post_install", "-at_install")
class TestGermanInterface(WorkshopCase):
    """German loaded into the database, as an install with de_DE does."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang(LANG)
        cls.env["ir.module.module"]._load_module_terms([MODULE], [LANG], overwrite=True)
        cls.de = cls.env(context=dict(cls.env.context, lang=LANG))
        cls.settings = ClientSettings(host="127.0.0.1", port=1883)

    def test_field_labels_and_help(self):
        fields = self.de["mqtt.device"].fields_get(
            ["standby_threshold_w", "working_threshold_w", "message_timeout_s"],
            ["string", "help"],
        )
        self.assertEqual(
            fields["standby_threshold_w"]["string"], "Bereitschaftsschwelle (W)"
        )
        self.assertEqual(fields["working_threshold_w"]["string"], "Arbeitsschwelle (W)")
        self.assertEqual(
            fields["message_timeout_s"]["string"], "Zeitlimit bei Funkstille (s)"
        )
        self.assertIn("Bereitschaft", fields["standby_threshold_w"]["help"])
        session_fields = self.de["mqtt.session"].fields_get(["end_reason"], ["string"])
        self.assertEqual(session_fields["end_reason"]["string"], "Endegrund")

    def test_selection_values(self):
        reasons = dict(
            self.de["mqtt.session"].fields_get(["end_reason"])["end_reason"][
                "selection"
            ]
        )
        self.assertEqual(
            reasons,
            {
                "power_drop": "Leistungsabfall",
                "timeout": "Zeitüberschreitung",
                "offline": "Messgerät offline",
                "manual": "Manuell",
            },
        )
        states = dict(
            self.de["mqtt.device"].fields_get(["current_state"])["current_state"][
                "selection"
            ]
        )
        self.assertEqual(states["standby"], "Bereitschaft")
        self.assertEqual(states["working"], "In Arbeit")
        discovery = dict(
            self.de["mqtt.device"].fields_get(["discovery_state"])["discovery_state"][
                "selection"
            ]
        )
        self.assertEqual(discovery["discovered"], "Entdeckt")

    def test_views_are_german(self):
        views = self.de["mqtt.device"].get_views(
            [
                (self.env.ref(f"{MODULE}.mqtt_device_view_kanban").id, "kanban"),
                (self.env.ref(f"{MODULE}.mqtt_device_view_form").id, "form"),
            ]
        )["views"]
        kanban, form = views["kanban"]["arch"], views["form"]["arch"]
        self.assertIn("Noch keine Daten", kanban)
        self.assertIn("Warte auf die erste Nachricht des Messgeräts", kanban)
        self.assertIn("Sitzungen", kanban)
        self.assertIn("kWh verbraucht", kanban)
        self.assertIn('title="In Benutzung"', kanban)
        self.assertNotIn("No data yet", kanban)
        self.assertIn('string="Sitzung starten"', form)
        self.assertIn('string="Sitzungserkennung"', form)
        self.assertIn("z. B. Lasercutter", form)
        # The English arch is untouched.
        en = self.env["mqtt.device"].get_views([(False, "kanban")])["views"]["kanban"]
        self.assertIn("No data yet", en["arch"])

    def test_menus_and_actions(self):
        def name(xmlid):
            return self.env.ref(f"{MODULE}.{xmlid}").with_env(self.de).name

        self.assertEqual(name("workshop_menu_root"), "Werkstatt")
        self.assertEqual(name("mqtt_device_menu_board"), "Live-Übersicht")
        self.assertEqual(name("mqtt_session_menu"), "Sitzungen")
        self.assertEqual(name("mqtt_message_menu"), "Rohnachrichten")
        self.assertEqual(name("mqtt_device_action_board"), "Live-Übersicht")

    def test_validation_message_has_its_values_filled_in(self):
        with self.assertRaises(ValidationError) as caught:
            self.de["mqtt.device"].create(
                {
                    "name": "Kreissäge",
                    "connection_id": self.connection.id,
                    "topic_prefix": "shellypmminig3-de0000000001",
                    "standby_threshold_w": 30.0,
                    "working_threshold_w": 10.0,
                }
            )
        self.assertEqual(
            str(caught.exception),
            "Kreissäge: Bereitschaftsschwelle (W) darf nicht über "
            "Arbeitsschwelle (W) liegen (30 > 10).",
        )
        with self.assertRaises(ValidationError) as caught:
            self.device.with_env(self.de).write({"standby_threshold_w": 0})
        self.assertEqual(
            str(caught.exception),
            "Band saw: Bereitschaftsschwelle (W) muss über 0 liegen (es ist 0).",
        )

    def test_computed_status_text(self):
        connection = self.connection.with_env(self.de)
        connection.invalidate_recordset(["runner_status"])
        self.assertEqual(connection.runner_status, "Gestoppt.")

    def test_broker_errors_written_in_english_read_in_german(self):
        """The runner writes English (it has no reader); the form translates."""
        error = retrying(
            describe_exception(ConnectionRefusedError(), self.settings), 7.5
        )
        self.connection.write(
            {"last_error": str(error), "last_error_data": error.to_json()}
        )
        self.assertEqual(
            self.connection.last_error_display,
            "Broker 127.0.0.1:1883 refused the connection (is it running?); "
            "retrying in 7.5 s",
        )
        connection = self.connection.with_env(self.de)
        self.assertEqual(
            connection.last_error_display,
            "Der Broker 127.0.0.1:1883 hat die Verbindung abgelehnt (läuft er?); "
            "neuer Versuch in 7.5 s",
        )

    def test_web_client_strings(self):
        """The JS strings the browser gets for German (/web/webclient/translations)."""
        messages = {
            m["id"]: m["string"]
            for m in code_translations.get_web_translations(MODULE, LANG)["messages"]
        }
        self.assertEqual(messages["%s ago"], "vor %s")
        self.assertEqual(
            messages["Since %(time)s · %(duration)s"],
            "Seit %(time)s Uhr · %(duration)s",
        )
        self.assertEqual(messages["%(h)s h %(m)s min"], "%(h)s Std. %(m)s Min.")
        self.assertEqual(messages["Busiest machine"], "Meistgenutzte Maschine")
        self.assertEqual(messages["When machines work"], "Wann Maschinen arbeiten")

    def test_demo_user_sees_german(self):
        staff = self.env.ref(f"{MODULE}.demo_user_staff", raise_if_not_found=False)
        if not staff:
            self.skipTest("demo data not loaded")
        self.assertEqual(staff.lang, LANG)
        # Only an installed (active) language reaches the user's context: an
        # install without de_DE (--load-language) falls back to English.
        user_lang = staff.with_user(staff).context_get()["lang"]
        self.assertEqual(user_lang, LANG)
        menu = self.env.ref(f"{MODULE}.mqtt_device_menu_board")
        self.assertEqual(
            menu.with_user(staff).with_context(lang=user_lang).name, "Live-Übersicht"
        )

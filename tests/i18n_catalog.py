# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The checks of a German catalog (i18n/de.po against the template), for
this addon (tests/models/test_i18n.py) and the addons built on it."""

import re
from collections import Counter

import polib

from odoo.tools.misc import file_path

# Python %-format ("%s", "%(machine)s", "%.1f"), JS/format() style ("{0}",
# "{name}"), and the attributes whose values are translated inside markup.
PLACEHOLDER_RE = re.compile(
    r"%\([A-Za-z_]\w*\)[#0\- +]*\d*(?:\.\d+)?[sdifrx]"
    r"|%[#0\- +]*\d*(?:\.\d+)?[sdifrx]"
    r"|\{\w*\}"
)
TAG_RE = re.compile(r"<[^>]+>")
ENTITY_RE = re.compile(r"&#?\w+;")
TRANSLATED_ATTR_RE = re.compile(
    r'\b(title|alt|aria-label|placeholder|string|help|data-tooltip)="[^"]*"'
)


def placeholders(text):
    return Counter(PLACEHOLDER_RE.findall(text.replace("%%", "")))


def markup(text):
    """Tags (with their translatable attribute values blanked) and entities."""
    tags = [TRANSLATED_ATTR_RE.sub(r'\1=""', tag) for tag in TAG_RE.findall(text)]
    return Counter(tags), Counter(ENTITY_RE.findall(text))


class GermanCatalog:
    """The .po files themselves (no database needed beyond the test case):
    mixed into a case before its ``TransactionCase``, with ``MODULE``."""

    MODULE = ""
    MIN_TERMS = 100  # fewer: the template looks empty

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pot = polib.pofile(file_path(f"{cls.MODULE}/i18n/{cls.MODULE}.pot"))
        cls.po = polib.pofile(file_path(f"{cls.MODULE}/i18n/de.po"))

    def test_header_is_what_odoo_expects(self):
        self.assertEqual(self.po.metadata.get("Language"), "de")
        self.assertIn("nplurals=2", self.po.metadata.get("Plural-Forms", ""))
        self.assertIn("charset=UTF-8", self.po.metadata.get("Content-Type", ""))

    def test_every_term_is_translated_with_the_same_placeholders(self):
        self.assertGreater(len(self.pot), self.MIN_TERMS, "the template looks empty")
        german = {entry.msgid: entry for entry in self.po if not entry.obsolete}
        problems = []
        for entry in self.pot:
            if entry.obsolete:
                continue
            de = german.get(entry.msgid)
            if de is None:
                problems.append(f"missing in de.po: {entry.msgid!r}")
                continue
            if not de.msgstr.strip():
                problems.append(f"empty translation: {entry.msgid!r}")
            if "fuzzy" in de.flags:
                problems.append(f"fuzzy translation: {entry.msgid!r}")
            if placeholders(entry.msgid) != placeholders(de.msgstr):
                problems.append(
                    f"placeholders differ: {entry.msgid!r} -> {de.msgstr!r}"
                )
            if markup(entry.msgid) != markup(de.msgstr):
                problems.append(f"markup differs: {entry.msgid!r} -> {de.msgstr!r}")
            if entry.msgid.strip() != entry.msgid and de.msgstr.strip() == de.msgstr:
                problems.append(f"surrounding spaces lost: {entry.msgid!r}")
        self.assertFalse(problems, "\n".join(problems))

    def test_code_terms_keep_their_odoo_comments(self):
        """Odoo reads Python and JS translations straight from de.po, keyed on
        the '#. odoo-python' / '#. odoo-javascript' comments of each entry."""
        template = {entry.msgid: entry.comment for entry in self.pot}
        for entry in self.po:
            for kind in ("odoo-python", "odoo-javascript"):
                if kind in template.get(entry.msgid, ""):
                    self.assertIn(kind, entry.comment, entry.msgid)

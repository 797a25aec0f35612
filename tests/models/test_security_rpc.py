# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Broker credentials over the wire: what a workshop user's browser or an
external JSON-RPC client can get.  Every call a user can make on a
connection is made, and the raw HTTP answer must not contain a secret."""

import base64
import json

from odoo.tests import HttpCase, new_test_user, tagged

PASSWORD = "pw-7Hq2-zebra-lantern"  # distinctive: searched in raw answers
USERNAME = "meter-login-k9x4"
CA = "-----BEGIN CERTIFICATE-----\nQ0EtbWFya2VyLXBsdW0=\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nY2xpZW50LXBlYXI=\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\na2V5LW1hcmtlci1maWc=\n-----END PRIVATE KEY-----\n"
SECRET_FIELDS = {
    "password": PASSWORD,
    "username": USERNAME,
    "tls_ca_cert": CA,
    "tls_client_cert": CERT,
    "tls_client_key": KEY,
}
STORED_SECRETS = ("password", "username")
USER_PW = "owm-rpc-user-Pw1!"
MANAGER_PW = "owm-rpc-manager-Pw1!"


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _markers(value):
    """The plain text and its base64 form (binary fields travel as base64)."""
    core = value.splitlines()[1] if value.startswith("-----") else value
    return {value, core, _b64(value)}


MARKERS = set().union(*(_markers(v) for v in SECRET_FIELDS.values()))


@tagged("post_install", "-at_install")
class TestSecretsOverRpc(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Both may export (base.group_allow_export): export_data really runs.
        cls.user = new_test_user(
            cls.env,
            login="owm_rpc_user",
            password=USER_PW,
            groups="base.group_user,base.group_allow_export,"
            "open_workshop_mqtt.group_user",
        )
        cls.manager = new_test_user(
            cls.env,
            login="owm_rpc_manager",
            password=MANAGER_PW,
            groups="base.group_user,base.group_allow_export,"
            "open_workshop_mqtt.group_manager",
        )
        cls.connection = cls.env["mqtt.connection"].create(
            {
                "name": "Secret broker",
                "host": "127.0.0.1",
                "port": 8883,
                "use_tls": True,
                "username": USERNAME,
                "password": PASSWORD,
                "tls_ca_cert": _b64(CA),
                "tls_client_cert": _b64(CERT),
                "tls_client_key": _b64(KEY),
                "auto_start": False,
            }
        )
        cls.cid = cls.connection.id

    # -- transports --------------------------------------------------------
    def call_kw(self, model, method, args, kwargs=None):
        """/web/dataset/call_kw in the logged-in session; the raw answer."""
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "model": model,
                "method": method,
                "args": args,
                "kwargs": kwargs or {},
            },
        }
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return response.text

    def execute_kw(self, login, password, model, method, args, kwargs=None):
        """/jsonrpc, as an external client; the raw answer."""
        uid = self.env["res.users"].search([("login", "=", login)]).id
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "service": "object",
                "method": "execute_kw",
                "args": [
                    self.env.cr.dbname,
                    uid,
                    password,
                    model,
                    method,
                    args,
                    kwargs or {},
                ],
            },
        }
        response = self.url_open(
            "/jsonrpc",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return response.text

    # -- what a user may try -----------------------------------------------
    def attempts(self):
        """(label, model, method, args, kwargs) a user can send."""
        cid, model = self.cid, "mqtt.connection"
        out = [
            ("read all", model, "read", [[cid]], {}),
            ("search_read all", model, "search_read", [[]], {}),
            ("copy_data", model, "copy_data", [[cid]], {}),
            ("fields_get", model, "fields_get", [], {}),
            ("web_read all", model, "web_read", [[cid]], {"specification": {}}),
        ]
        for field in SECRET_FIELDS:
            spec = {"specification": {field: {}}}
            out += [
                (f"read {field}", model, "read", [[cid], [field]], {}),
                (f"search_read {field}", model, "search_read", [[], [field]], {}),
                (f"web_read {field}", model, "web_read", [[cid]], spec),
                (f"web_search_read {field}", model, "web_search_read", [[]], spec),
                (f"export_data {field}", model, "export_data", [[cid], [field]], {}),
                (
                    f"attachment of {field}",
                    "ir.attachment",
                    "search_read",
                    [
                        [
                            ("res_model", "=", model),
                            ("res_field", "=", field),
                            ("res_id", "=", cid),
                        ],
                        ["datas", "raw", "res_field"],
                    ],
                    {},
                ),
            ]
        # Grouping needs a stored column (the certificates live in attachments).
        for field in STORED_SECRETS:
            out += [
                (
                    f"read_group by {field}",
                    model,
                    "read_group",
                    [[], [field], [field]],
                    {"lazy": False},
                ),
                (
                    f"read_group {field} aggregate",
                    model,
                    "read_group",
                    [[], [f"{field}:array_agg"], []],
                    {},
                ),
                (
                    f"web_read_group by {field}",
                    model,
                    "web_read_group",
                    [[], [field], [field]],
                    {},
                ),
            ]
        out.append(
            (
                "search password oracle",
                model,
                "search_count",
                [[("password", "=", PASSWORD)]],
                {},
            )
        )
        return out

    def assert_no_secret(self, label, text):
        for marker in MARKERS:
            self.assertNotIn(marker, text, f"{label}: a secret in the answer")

    def test_call_kw_as_a_user_leaks_nothing(self):
        self.authenticate("owm_rpc_user", USER_PW)
        answered = 0
        for label, model, method, args, kwargs in self.attempts():
            with self.subTest(call=label):
                text = self.call_kw(model, method, args, kwargs)
                self.assert_no_secret(label, text)
                answered += '"result"' in text
        # Plain reads still work for a user (the secrets are left out).
        self.assertIn("Secret broker", self.call_kw(
            "mqtt.connection", "search_read", [[], ["name"]]
        ))  # fmt: skip
        self.assertGreater(answered, 3)

    def test_jsonrpc_as_a_user_leaks_nothing(self):
        for label, model, method, args, kwargs in self.attempts():
            with self.subTest(call=label):
                text = self.execute_kw(
                    "owm_rpc_user", USER_PW, model, method, args, kwargs
                )
                self.assert_no_secret(label, text)

    def test_binary_download_as_a_user_leaks_nothing(self):
        self.authenticate("owm_rpc_user", USER_PW)
        for field in ("tls_ca_cert", "tls_client_cert", "tls_client_key"):
            for url in (
                f"/web/content/mqtt.connection/{self.cid}/{field}",
                f"/web/content?model=mqtt.connection&id={self.cid}&field={field}"
                "&download=true",
                f"/web/image/mqtt.connection/{self.cid}/{field}",
            ):
                with self.subTest(url=url):
                    response = self.url_open(url)
                    self.assert_no_secret(url, response.text)

    def test_a_manager_reads_them(self):
        """The positive control: the same calls do return them to a manager."""
        self.authenticate("owm_rpc_manager", MANAGER_PW)
        text = self.call_kw(
            "mqtt.connection", "read", [[self.cid], list(SECRET_FIELDS)]
        )
        self.assertIn(PASSWORD, text)
        self.assertIn(USERNAME, text)
        self.assertIn(_b64(KEY), text)
        text = self.execute_kw(
            "owm_rpc_manager",
            MANAGER_PW,
            "mqtt.connection",
            "export_data",
            [[self.cid], ["password"]],
        )
        self.assertIn(PASSWORD, text)

#!/usr/bin/env python3
"""Take the README screenshots from a running demo (./run.sh) with headless Chromium.

    python3 tools/screenshots.py [--url http://127.0.0.1:8069] [--out docs/screenshots]

Logs in as admin, then opens the live board, the latest finished session
(with its power curve), the analytics dashboard, a recompute preview of
the table saw with a shorter stop delay, and, with the maintenance bridge
installed, a machine's equipment and a request a plan opened, and saves one
PNG each.  Drives Chromium
over the DevTools protocol (websocket-client); no browser download.
"""

import argparse
import base64
import http.cookiejar
import itertools
import json
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = {
    "live_board": "/odoo/action-open_workshop_mqtt.mqtt_device_action_board",
    "analytics": "/odoo/action-open_workshop_mqtt.mqtt_dashboard_action",
}

# A page's tab to open before the picture.
TABS = {"equipment": '.o_notebook_headers a[name="mqtt_machine"]'}


def login(base, db, user, password):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = json.dumps(
        {"jsonrpc": "2.0", "params": {"db": db, "login": user, "password": password}}
    ).encode()
    req = urllib.request.Request(
        f"{base}/web/session/authenticate", body, {"Content-Type": "application/json"}
    )
    reply = json.loads(opener.open(req, timeout=30).read())
    if reply.get("error"):
        raise SystemExit(f"login failed: {reply['error']['data']['message']}")
    return next(c.value for c in jar if c.name == "session_id"), opener


def rpc(opener, base, model, method, *args, **kwargs):
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "params": {
                "model": model,
                "method": method,
                "args": args,
                "kwargs": kwargs,
            },
        }
    ).encode()
    req = urllib.request.Request(
        f"{base}/web/dataset/call_kw", body, {"Content-Type": "application/json"}
    )
    return json.loads(opener.open(req, timeout=30).read())["result"]


class Chrome:
    """Just enough of the DevTools protocol: cookie, navigate, screenshot."""

    def __init__(self, width=1400, height=1040):
        binary = shutil.which("chromium") or shutil.which("google-chrome")
        if not binary:
            raise SystemExit("Chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="owm-shots-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        for line in self.proc.stderr:
            if "DevTools listening on ws://" in line:
                port = int(line.split("ws://", 1)[1].split("/", 1)[0].split(":")[1])
                break
        targets = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read()
        )
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.ids = itertools.count(1)

    def send(self, method, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                return reply.get("result", {})

    def shot(self, url, path, wait_s, click=None):
        """``url`` once the web client shows it (``click``: a tab to open)."""
        self.send("Page.navigate", url=url)
        self.wait_for(".o_action_manager > *", wait_s * 8)  # assets built on first use
        time.sleep(wait_s)
        if click and self.click(click, wait_s):
            time.sleep(wait_s / 2)
        self.save(path)

    def wait_for(self, selector, wait_s):
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.run(f"!!document.querySelector({json.dumps(selector)})"):
                return True
            time.sleep(0.3)
        return False

    def run(self, expression):
        """Evaluate JavaScript in the page; its value."""
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply.get("result", {}).get("value")

    def click(self, selector, wait_s=10.0):
        """Click the first element ``selector`` finds, waiting for it."""
        if self.wait_for(selector, wait_s):
            # Clicked after this call returns: a handler may block the page a while.
            self.run(
                f"setTimeout(() => document.querySelector({json.dumps(selector)})"
                ".click(), 0)"
            )
            return True
        print(f"not found: {selector}")
        return False

    def save(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"saved {path}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def recompute_preview(opener, base):
    """A recompute preview of the table saw's last two weeks with a shorter
    stop delay (its sessions split at long pauses); the wizard's id."""
    saws = rpc(
        opener,
        base,
        "mqtt.device",
        "search_read",
        [("machine_type", "=", "saw")],
        ["id", "stop_debounce_s"],
        order="sequence",
        limit=1,
    )
    if not saws:
        return None
    wizard = rpc(
        opener,
        base,
        "mqtt.session.recompute",
        "create",
        [{"device_ids": [(6, 0, [saws[0]["id"]])], "stop_debounce_s": 30.0}],
        context={"default_device_ids": [saws[0]["id"]]},
    )[0]
    rpc(opener, base, "mqtt.session.recompute", "action_preview", [wizard])
    return wizard


def bridge_pages(opener, base):
    """The bridges' pages (when installed): a machine's equipment, a
    preventive request a plan opened."""
    pages = {}
    models = {
        m["model"]
        for m in rpc(
            opener,
            base,
            "ir.model",
            "search_read",
            [("model", "=", "maintenance.equipment")],
            ["model"],
        )
    }
    if "maintenance.equipment" in models:
        equipment = rpc(
            opener,
            base,
            "maintenance.equipment",
            "search_read",
            [("mqtt_device_id", "!=", False), ("mqtt_plan_ids", "!=", False)],
            ["id"],
            limit=1,
        )
        if equipment:
            pages["equipment"] = f"/odoo/maintenance.equipment/{equipment[0]['id']}"
        # A preventive request a plan opened when it fell due.
        requests = rpc(
            opener,
            base,
            "maintenance.request",
            "search_read",
            [("mqtt_plan_id", "!=", False)],
            ["id"],
            order="id desc",
            limit=1,
        )
        if requests:
            pages["maintenance_request"] = (
                f"/odoo/maintenance.request/{requests[0]['id']}"
            )
    return pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8069")
    parser.add_argument("--db", default="owm_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--wait", type=float, default=4.0, help="s per page to settle")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sid, opener = login(args.url, args.db, args.login, args.password)
    # The web client shows times in the browser's zone, names made on the
    # server use the user's: show the page as that user's browser would.
    (me,) = rpc(
        opener,
        args.url,
        "res.users",
        "search_read",
        [("login", "=", args.login)],
        ["tz"],
    )
    # A finished session that had both standby and working time shows the most.
    domain = [
        ("state", "=", "closed"),
        ("standby_duration_s", ">", 60),
        ("working_duration_s", ">", 60),
    ]
    sessions = rpc(
        opener,
        args.url,
        "mqtt.session",
        "search_read",
        domain,
        ["id"],
        order="start_time desc",
        limit=1,
    )
    pages = dict(PAGES)
    if sessions:
        pages["session"] = (
            f"/odoo/action-open_workshop_mqtt.mqtt_session_action/{sessions[0]['id']}"
        )
    wizard = recompute_preview(opener, args.url)
    if wizard:
        pages["recompute"] = f"/odoo/mqtt.session.recompute/{wizard}"
    pages.update(bridge_pages(opener, args.url))
    chrome = Chrome()
    try:
        host = args.url.split("//", 1)[1].split("/", 1)[0].split(":")[0]
        if me["tz"]:
            chrome.send("Emulation.setTimezoneOverride", timezoneId=me["tz"])
        chrome.send("Network.enable")
        chrome.send(
            "Network.setCookie", name="session_id", value=sid, domain=host, path="/"
        )
        for name, path in pages.items():
            tab = TABS.get(name)
            chrome.shot(f"{args.url}{path}", out / f"{name}.png", args.wait, tab)
    finally:
        chrome.close()


if __name__ == "__main__":
    main()

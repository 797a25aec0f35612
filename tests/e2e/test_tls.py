"""TLS to the broker, end to end: a private CA, a Mosquitto with TLS
listeners on loopback (one of them requires client certificates), and
connections configured over JSON-RPC as a manager would.

Verification is on by default: with the CA uploaded the runner connects and
records frames; trusting only the system's CAs it is refused with plain
words on the form and consumes nothing; with verification turned off it
connects.  "Test Connection" answers the same way.  Mutual TLS works with the
client certificate uploaded, and a refused password never reaches the log."""

import base64
import subprocess
import time
import uuid

import owm_harness as h
import pytest

DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}
PASSWORD = "tls-Pw-9d2e-walrus"
WRONG = "tls-wrong-77ac-puffin"


def b64(path):
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def tls(workdir):
    """CA, server and client material, and a broker with a plain listener (for
    the test's publisher), a TLS one and a TLS one requiring a client cert."""
    material = h.make_tls_material(workdir / f"tls-{uuid.uuid4().hex[:6]}")
    ports = {"tls": h.free_port(), "mtls": h.free_port()}
    conf = "\n".join(
        [
            h.tls_listener_conf(ports["tls"], material),
            h.tls_listener_conf(ports["mtls"], material, require_certificate=True),
        ]
    )
    broker = h.FaultBroker(
        workdir / f"broker-{uuid.uuid4().hex[:6]}", extra_conf=conf
    ).start()
    h.wait_for(lambda: h.port_open(ports["mtls"]), 10, "the TLS listeners")
    yield material, ports, broker
    broker.stop()


def connection(rpc, name, port, prefix, **vals):
    values = {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "use_tls": True,
        "auto_start": False,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 2.0,
    }
    values.update(vals)
    conn_id = rpc("mqtt.connection", "create", values)
    dev_id = rpc(
        "mqtt.device",
        "create",
        dict(DEVICE_VALS, name=name, connection_id=conn_id, topic_prefix=prefix),
    )
    return conn_id, dev_id


def test_connection(rpc, conn_id):
    """(ok, message) of the form's Test Connection button."""
    try:
        answer = rpc("mqtt.connection", "action_test_connection", [conn_id])
    except h.RpcError as exc:
        return False, str(exc)
    return answer["params"]["type"] == "success", answer["params"]["message"]


test_connection.__test__ = False  # a helper, not a pytest test


@pytest.mark.timeout(240)
def test_tls_verification(tls, servers):
    material, ports, broker = tls
    server = servers()
    rpc = server.rpc()
    ca = b64(material["ca"])
    cases = {
        "verified": dict(tls_ca_cert=ca),
        "system trust": {},
        "unverified": dict(tls_verify=False),
        "mutual": dict(
            tls_ca_cert=ca,
            tls_client_cert=b64(material["client"]),
            tls_client_key=b64(material["client_key"]),
        ),
        "mutual, no client cert": dict(tls_ca_cert=ca),
    }
    ids = {}
    for n, (name, vals) in enumerate(cases.items()):
        port = ports["mtls" if name.startswith("mutual") else "tls"]
        prefix = f"shellypmminig3-00000000710{n}"
        ids[name] = (*connection(rpc, name, port, prefix, **vals), prefix)
    # The connection test button, before anything runs.
    answers = {name: test_connection(rpc, ids[name][0]) for name in cases}
    rpc("mqtt.connection", "action_start", [i[0] for i in ids.values()])
    for name in ("verified", "unverified", "mutual"):
        h.wait_state(rpc, ids[name][0], "connected", 20, f"{name} to connect")
    refused = {
        name: h.wait_for(
            lambda cid=ids[name][0]: (
                lambda row: row if row["state"] == "error" else None
            )(h.connection_row(rpc, cid)),
            20,
            f"{name} to be refused",
        )
        for name in ("system trust", "mutual, no client cert")
    }
    publisher = h.ShellyPublisher(broker.port)
    try:
        t0 = round(time.time()) - 600.0
        for _conn_id, _dev_id, prefix in ids.values():
            for k in range(3):
                publisher.notify_status(prefix, t0 + k, 5.0 + k)
        publisher.flush()
    finally:
        publisher.close()
    for name in ("verified", "unverified", "mutual"):
        h.wait_for(
            lambda dev_id=ids[name][1]: (
                rpc("mqtt.message", "search_count", [("device_id", "=", dev_id)]) == 3
            ),
            15,
            f"{name}: 3 frames recorded",
        )
    time.sleep(1)
    stats = {
        name: h.connection_row(rpc, ids[name][0], ["stat_received"])["stat_received"]
        for name in cases
    }
    h.figures(
        "tls",
        answers=answers,
        refused={k: v["last_error"] for k, v in refused.items()},
        received=stats,
    )
    # Verified against the uploaded CA, unverified, mutual: connected, recorded.
    for name in ("verified", "unverified", "mutual"):
        ok, message = answers[name]
        assert ok and "over TLS" in message, (name, message)
        assert stats[name] == 3
    # The system's CAs do not know ours: refused in plain words, nothing consumed.
    error = refused["system trust"]["last_error"]
    assert "certificate" in error and "not trusted" in error, error
    assert f"127.0.0.1:{ports['tls']}" in error
    ok, message = answers["system trust"]
    assert not ok and "certificate" in message, message
    assert stats["system trust"] == 0
    assert not rpc(
        "mqtt.message", "search_count", [("device_id", "=", ids["system trust"][1])]
    )
    # A listener requiring a client certificate refuses a connection without,
    # and both the form and the button say what is missing.
    ok, message = answers["mutual, no client cert"]
    assert not ok and "client certificate" in message, message
    error = refused["mutual, no client cert"]["last_error"]
    assert "client certificate" in error and "Disconnected by broker" not in error
    assert stats["mutual, no client cert"] == 0
    assert "Traceback" not in server.log()


@pytest.mark.timeout(180)
def test_refused_password_over_tls_is_never_logged(workdir, servers):
    """A broker requiring a password, over TLS: the wrong one is refused in
    plain words on the form and by the test button, the right one connects,
    and neither password appears anywhere in the server's log."""
    material = h.make_tls_material(workdir / f"tls-{uuid.uuid4().hex[:6]}")
    passwd = material["ca"].parent / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "meter", PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    tls_port = h.free_port()
    broker = h.FaultBroker(
        workdir / f"broker-{uuid.uuid4().hex[:6]}",
        extra_conf="\n".join(
            [
                h.tls_listener_conf(tls_port, material),
                "allow_anonymous false",
                f"password_file {passwd}",
            ]
        ),
    ).start()
    try:
        h.wait_for(lambda: h.port_open(tls_port), 10, "the TLS listener")
        server = servers()
        rpc = server.rpc()
        creds = dict(username="meter", tls_ca_cert=b64(material["ca"]))
        wrong, _ = connection(
            rpc,
            "wrong",
            tls_port,
            "shellypmminig3-000000007201",
            password=WRONG,
            **creds,
        )
        right, _ = connection(
            rpc,
            "right",
            tls_port,
            "shellypmminig3-000000007202",
            password=PASSWORD,
            **creds,
        )
        answers = {cid: test_connection(rpc, cid) for cid in (wrong, right)}
        rpc("mqtt.connection", "action_start", [wrong, right])
        h.wait_state(rpc, right, "connected", 20)
        row = h.wait_for(
            lambda: (lambda r: r if r["state"] == "error" else None)(
                h.connection_row(rpc, wrong)
            ),
            20,
            "the wrong password to be refused",
        )
        time.sleep(3)  # a few retries, each logged
    finally:
        broker.stop()
    server.stop()
    log = server.log()
    h.figures("tls wrong password", last_error=row["last_error"], test_button=answers)
    assert "not authorized" in row["last_error"]
    assert "Check username and password" in row["last_error"]
    assert not answers[wrong][0] and "not authorized" in answers[wrong][1]
    assert answers[right][0]
    assert log.count("not authorized") >= 2, "the refusals are logged"
    for secret in (WRONG, PASSWORD):
        assert secret not in log
        assert secret not in repr(answers) + row["last_error"]

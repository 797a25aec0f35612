"""Messages that the runner writes in English and the UI shows translated."""

import json
import ssl

from ....services.mqtt.connect import ClientSettings
from ....services.mqtt.texts import (
    Text,
    describe_connack,
    describe_exception,
    describe_lost,
    retrying,
)

SETTINGS = ClientSettings(host="broker.local", port=8883, use_tls=True)
GERMAN = {
    "%(error)s; retrying in %(delay)s s": "%(error)s; neuer Versuch in %(delay)s s",
    "TLS certificate of %(where)s not trusted: %(reason)s": (
        "TLS-Zertifikat von %(where)s nicht vertrauenswürdig: %(reason)s"
    ),
}


def test_a_message_is_its_english_text():
    error = describe_exception(ConnectionRefusedError(), SETTINGS)
    assert error == "Broker broker.local:8883 refused the connection (is it running?)"
    assert isinstance(error, str)


def test_nested_messages_translate_and_survive_json():
    exc = ssl.SSLCertVerificationError("certificate verify failed")
    exc.verify_message = "self-signed certificate"
    error = retrying(describe_exception(exc, SETTINGS), 7.5)
    assert error == (
        "TLS certificate of broker.local:8883 not trusted: self-signed certificate; "
        "retrying in 7.5 s"
    )
    again = Text.from_json(json.loads(json.dumps(error.to_json())))
    assert again == error
    german = again.translate(lambda text: GERMAN.get(text, text))
    assert german == (
        "TLS-Zertifikat von broker.local:8883 nicht vertrauenswürdig: "
        "self-signed certificate; neuer Versuch in 7.5 s"
    )


def test_connack_and_lost_connections():
    class Code:
        value = 135

        def __str__(self):
            return "Not authorized"

    assert describe_connack(Code()) == (
        "Refused by the broker: not authorized (Not authorized). "
        "Check username and password."
    )
    socket_error = (
        "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] certificate required (_ssl.c:2580)"
    )
    assert describe_lost(SETTINGS, socket_error, before_connack=True) == (
        "Connection to broker.local:8883 lost (TLS: certificate required; "
        "the broker wants a client certificate)"
    )
    assert describe_lost(SETTINGS) == "Connection to broker.local:8883 lost"

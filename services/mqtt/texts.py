"""Plain-words messages about a broker connection, translatable later.

The runner has no user, so it cannot know the reader's language when it
writes ``last_error``: a message is a ``Text`` -- an English ``str`` that also
keeps its template and values, so the Odoo layer can show it in the reader's
language (``Text.translate(env._)``).  ``_`` here only marks the templates for
Odoo's translation export; no Odoo import.
"""

import re
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paho.mqtt.reasoncodes import ReasonCode

    from .connect import ClientSettings


def _(template: str) -> str:
    """Mark a template for Odoo's translation export (identity at run time)."""
    return template


class Text(str):
    """An English message that can be rendered again in another language."""

    __slots__ = ("template", "params")
    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> "Text":
        obj = super().__new__(cls, template % params if params else template)
        obj.template = template
        obj.params = params
        return obj

    # Shadows str.translate(table) on purpose (the Odoo layer calls
    # translate(env._)); renaming it would change the API.
    def translate(self, gettext: Callable[[str], str]) -> str:  # type: ignore[override]
        params = {
            k: v.translate(gettext) if isinstance(v, Text) else v
            for k, v in self.params.items()
        }
        text = gettext(self.template)
        return text % params if params else text

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "params": {
                k: v.to_json() if isinstance(v, Text) else v
                for k, v in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Text":
        params = {
            k: cls.from_json(v) if isinstance(v, dict) else v
            for k, v in (data.get("params") or {}).items()
        }
        return cls(data["template"], **params)


def describe_connack(reason_code: "ReasonCode | int") -> Text:
    """Plain words for a CONNACK failure (shown on the connection form)."""
    code = str(reason_code)
    value = getattr(reason_code, "value", reason_code)
    if value in (4, 5, 134, 135):
        return Text(
            _(
                "Refused by the broker: not authorized (%(code)s). "
                "Check username and password."
            ),
            code=code,
        )
    if value in (2, 133):
        return Text(
            _("Refused by the broker: client id not accepted (%(code)s)."), code=code
        )
    if value in (3, 136):
        return Text(_("Broker unavailable (%(code)s)."), code=code)
    return Text(_("Refused by the broker: %(code)s."), code=code)


def describe_exception(exc: BaseException, settings: "ClientSettings") -> Text:
    """Plain words for a network or TLS error; never includes secrets."""
    where = settings.address
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Text(
            _("TLS certificate of %(where)s not trusted: %(reason)s"),
            where=where,
            reason=str(exc.verify_message or exc),
        )
    if isinstance(exc, ssl.SSLError):
        return Text(
            _("TLS error with %(where)s: %(reason)s"),
            where=where,
            reason=str(exc.reason or exc),
        )
    if isinstance(exc, ConnectionRefusedError):
        return Text(
            _("Broker %(where)s refused the connection (is it running?)"), where=where
        )
    if isinstance(exc, socket.gaierror):
        return Text(
            _("Broker host '%(host)s' not found (%(reason)s)"),
            host=settings.host,
            reason=str(exc.strerror),
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return no_answer(settings, settings.connect_timeout_s)
    if isinstance(exc, OSError):
        return Text(
            _("Network error with %(where)s: %(reason)s"),
            where=where,
            reason=str(exc.strerror or exc),
        )
    return Text(
        _("Error with %(where)s: %(reason)s"),
        where=where,
        reason=f"{type(exc).__name__}: {exc}",
    )


def no_answer(settings: "ClientSettings", timeout: float) -> Text:
    return Text(
        _("No answer from broker %(where)s within %(seconds)s s"),
        where=settings.address,
        seconds=f"{timeout:g}",
    )


_SSL_NOISE = re.compile(r"^\[SSL: [A-Z0-9_]+\] *|\s*\(_ssl\.c:\d+\)$")


def describe_lost(
    settings: "ClientSettings",
    socket_error: str | None = None,
    before_connack: bool = False,
) -> Text:
    """Plain words for a connection that broke once open (paho only logs why)."""
    if not socket_error:
        return Text(_("Connection to %(where)s lost"), where=settings.address)
    reason = _SSL_NOISE.sub("", socket_error).strip() or socket_error
    tls = settings.use_tls and ("_ssl.c" in socket_error or "[SSL" in socket_error)
    if tls:
        reason = f"TLS: {reason}"
    hint: Text | None = None
    if "certificate required" in reason:
        hint = Text(_("the broker wants a client certificate"))
    elif tls and before_connack and not settings.tls_cert_pem:
        hint = Text(_("does the broker want a client certificate?"))
    if hint is not None:
        return Text(
            _("Connection to %(where)s lost (%(reason)s; %(hint)s)"),
            where=settings.address,
            reason=reason,
            hint=hint,
        )
    return Text(
        _("Connection to %(where)s lost (%(reason)s)"),
        where=settings.address,
        reason=reason,
    )


def db_write_failing(reason: str) -> Text:
    return Text(_("Database write failing: %(reason)s"), reason=reason)


def retrying(error: str, delay: float) -> Text:
    return Text(
        _("%(error)s; retrying in %(delay)s s"), error=error, delay=_seconds(delay)
    )


def disconnected_by_broker(reason_code: "ReasonCode") -> Text:
    return Text(_("Disconnected by broker: %(code)s"), code=str(reason_code))


def connected(settings: "ClientSettings", ms: float) -> Text:
    if settings.use_tls:
        return Text(
            _("Connected to %(where)s over TLS in %(ms)s ms (MQTT 5)."),
            where=settings.address,
            ms=f"{ms:.0f}",
        )
    return Text(
        _("Connected to %(where)s in %(ms)s ms (MQTT 5)."),
        where=settings.address,
        ms=f"{ms:.0f}",
    )


def _seconds(delay: float) -> str:
    """A retry delay as people read it: whole seconds ("17"), tenths below
    ten ("2.5"), never "16.875"."""
    return f"{delay:.0f}" if delay >= 10 else f"{round(delay, 1):g}"

"""The MQTT transport: one broker connection with manual acknowledgements.

Owns the long-lived client (client.py), opening a connection and the form's
probe (connect.py), the tuned paho client (fast_paho.py), the inbound message
type (inbound.py), the reconnect backoff (backoff.py) and the plain-words
texts about a connection (texts.py).

Imports paho-mqtt and the standard library only, never Odoo or the engine.
"""

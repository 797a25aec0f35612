"""The runtime behind the models, one sub-package per layer.

* ``engine/``: pure session engine (state machine, replay, machines, the
  batch); imports ``parsers`` and the standard library only.
* ``mqtt/``: the MQTT transport; paho-mqtt and the standard library only.
* ``runner/``: hosting in the Odoo server and the database side (locks,
  configuration, the batch writer); imports ``engine``, ``mqtt``, ``models``
  and Odoo.

Imports go one way: parsers <- engine <- runner -> models, mqtt <- runner.
Models import the pure packages (parsers, engine, mqtt), never the runner.
"""

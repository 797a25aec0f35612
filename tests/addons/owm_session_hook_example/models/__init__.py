from . import mqtt_session

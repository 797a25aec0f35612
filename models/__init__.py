from . import mqtt_connection
from . import mqtt_device
from . import mqtt_session
from . import mqtt_message
from . import mqtt_dashboard

from . import pricing
from . import mqtt_device
from . import mqtt_session
from . import pos_order
from . import pos_session
from . import mqtt_session_recompute

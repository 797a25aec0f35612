from . import maintenance_equipment
from . import maintenance_request
from . import mqtt_maintenance_plan
from . import mqtt_maintenance_guard
from . import mqtt_device
from . import mqtt_session
from . import mqtt_utilisation

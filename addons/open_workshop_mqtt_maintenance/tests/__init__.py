from . import test_meters
from . import test_plans
from . import test_plan_race
from . import test_guards
from . import test_utilisation
from . import test_rights
from . import test_tour_equipment
from . import test_i18n

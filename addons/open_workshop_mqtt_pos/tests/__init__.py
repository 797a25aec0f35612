from . import test_price
from . import test_charge
from . import test_charge_race
from . import test_recompute_rule
from . import test_rights
from . import test_other_company
from . import test_i18n
from . import test_tour_pos

"""Valid events as upstream systems send them, for tests to vary: `services.tools.factories`,
where the benchmark's hostile mix (`services.tools.fuzz`) finds them too."""

from services.tools.factories import *  # noqa: F403
from services.tools.factories import ASKER_EMAIL, ASKER_NAME, ASKER_PHONE, OA  # noqa: F401

"""Every error schemalog raises: one hierarchy, rooted at `SchemalogError`.

Each error carries `what` (what failed), `state` (what the database holds now), `hint`
(the next step) and `exit_code` (the CLI's exit status for it).
"""

from schemalog.engine.base.errors import *  # noqa: F403
from schemalog.engine.base.errors import __all__  # noqa: F401

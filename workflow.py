"""``shoal.workflow``: the workflow API (a thin re-export of ``shoal.sdk.workflow``)."""

from shoal.sdk.workflow import *  # noqa: F401,F403
from shoal.sdk.workflow import __all__  # noqa: F401

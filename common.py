"""``shoal.common``: shared SDK values (a thin re-export of ``shoal.sdk.common``)."""

from shoal.sdk.common import *  # noqa: F401,F403
from shoal.sdk.common import __all__  # noqa: F401

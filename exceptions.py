"""``shoal.exceptions``: SDK exceptions (a thin re-export of ``shoal.sdk.exceptions``)."""

from shoal.sdk.exceptions import *  # noqa: F401,F403
from shoal.sdk.exceptions import __all__  # noqa: F401

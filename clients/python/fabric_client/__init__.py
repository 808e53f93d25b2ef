"""Python client of Fabric's gRPC API: ``Fabric(url, api_key)`` and ``FabricError``.

See clients/python/README.md.
"""

from .client import TERMINAL_EVENT_KINDS, TERMINAL_RUN_STATUSES, Fabric
from .errors import FabricError, Issue

__version__ = "0.1.0"

__all__ = ["Fabric", "FabricError", "Issue", "TERMINAL_EVENT_KINDS", "TERMINAL_RUN_STATUSES", "__version__"]

"""
The stats tree: the counters and sessions as JSON over HTTP, and its OpenAPI document.

- :mod:`.resource`: :class:`StatsResource`, the root (``/stats``, ``/stats/sessions``).
- :mod:`.metricas`: ``/stats/metricas/{name}`` and its ``/iterate`` and ``/timeserie`` views.
- :mod:`.params`: what the query parameters mean, and which view takes which.
- :mod:`.responses`: JSON answers and errors.
- :mod:`.access`: who may read the tree (a token, loopback clients only, or public) and CORS.
- :mod:`.openapi`: the OpenAPI 3 document.
- :mod:`.mount`: :class:`Mounted`, to serve the tree in front of an application's own root.

It reads the domains (web, clustering, counters) and storage; nothing below imports it.
"""

from .mount import Mounted
from .openapi import openapi_document
from .resource import StatsResource

__all__ = ["Mounted", "StatsResource", "openapi_document"]

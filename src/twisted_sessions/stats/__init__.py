"""
The stats tree: the counters and sessions as JSON over HTTP, and its OpenAPI document.

- :mod:`.resource`: :class:`StatsResource`, the root (``/stats``, ``/stats/sessions``).
- :mod:`.metricas`: ``/stats/metricas/{name}`` and its ``/iterate`` and ``/timeserie`` views.
- :mod:`.routes`: the route table: each view's parameters, their constraints, its answer.
- :mod:`.params`: what the checked query parameters mean.
- :mod:`.responses`: JSON answers and errors.
- :mod:`.access`: who may read the tree (a token, loopback clients only, or public) and CORS.
- :mod:`.openapi`: the OpenAPI 3 document, generated from the route table.
- :mod:`.mount`: :class:`Mounted`, to serve the tree in front of an application's own root.

It reads the domains (web, clustering, counters) and storage; nothing below imports it.
"""

from .mount import Mounted
from .openapi import openapi_document
from .resource import StatsResource

__all__ = ["Mounted", "StatsResource", "openapi_document"]

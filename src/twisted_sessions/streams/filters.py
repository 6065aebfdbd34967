"""
Server-side filters: what a client asks for with query parameters, matched as Pywikibot's
``EventStreams.register_filter`` matches keyword filters of its default ``all`` kind, so that a
client can ask the server for what it would otherwise filter itself.

``?type=edit&bot=true`` keeps the events whose ``type`` is ``"edit"`` and whose ``bot`` is
``true``:

- every parameter must match (``all``); a parameter given twice matches either value
  (``?status=404&status=500``, Pywikibot's iterable values);
- ``true``, ``false`` and ``null`` match by identity: ``bot=true`` matches ``true`` only, never
  ``1`` (Pywikibot uses ``is`` for them; ``==`` would match ``1``);
- a number matches that number, or the same text (``status=200`` matches ``200`` and
  ``"200"``); any other value matches that exact text; a value in double quotes is a JSON
  string and matches only that text (``bot="true"``);
- a key the event lacks never matches;
- only the event's top-level keys are compared (as Pywikibot does).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: What ``true``, ``false`` and ``null`` stand for: matched with ``is``.
_SINGLETONS: dict[str, Any] = {"true": True, "false": False, "null": None}


class _Value:
    """
    One wanted value of a key, as the query string gave it.
    """

    __slots__ = ("is_singleton", "number", "singleton", "text")

    def __init__(self, raw: str) -> None:
        self.is_singleton = raw in _SINGLETONS
        self.singleton = _SINGLETONS.get(raw)
        self.text = raw
        self.number: float | None = None
        if raw.startswith('"'):
            try:
                text = json.loads(raw)
            except ValueError:
                text = None
            if not isinstance(text, str):
                raise ValueError(f"filter value {raw!r} starts with a quote but is no JSON string")
            self.text = text
            return
        try:
            number = float(raw)
        except ValueError:
            return
        if math.isfinite(number):
            self.number = number

    def matches(self, value: Any) -> bool:
        if self.is_singleton:
            return value is self.singleton
        if isinstance(value, str):
            return value == self.text
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.number is not None and value == self.number
        return False


class EventFilter:
    """
    The conditions of one subscription.

    :param conditions: each key to the values it may have (one or more).
    :raises ValueError: naming a bad value.
    """

    def __init__(self, conditions: Mapping[str, list[str]]) -> None:
        self._conditions = [
            (key, [_Value(raw) for raw in values]) for key, values in sorted(conditions.items())
        ]
        #: The same conditions, for grouping the clients that want the same events.
        self.key = tuple((key, tuple(values)) for key, values in sorted(conditions.items()))

    def __bool__(self) -> bool:
        return bool(self._conditions)

    def matches(self, data: Mapping[str, Any]) -> bool:
        """
        Whether an event's data meets every condition.
        """
        for key, wanted in self._conditions:
            if key not in data:
                return False
            value = data[key]
            if not any(candidate.matches(value) for candidate in wanted):
                return False
        return True

"""
From a consumed event's data to what the pipeline needs: who, when, and the axis values.

Fields are named by dotted paths into nested objects (``meta.dt`` is ``data["meta"]["dt"]``).
The default suits Wikimedia's ``recentchange`` events: the user is ``user``, the time
``meta.dt`` (when the event was produced, ISO 8601), and the events are counted by ``wiki``,
``type``, ``bot`` and ``namespace``. Anything else: name other fields, or give a callable.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..clustering.timestamps import to_seconds
from .filters import Predicate, predicate

#: What a mapper returns: the user, the event time (UNIX seconds) and the axis values (text,
#: in the order of the feed's axes); or ``None`` to leave the event out.
Mapped = tuple[Hashable, float, tuple[str, ...]]
Mapper = Callable[[Mapping[str, Any]], Mapped | None]

RECENTCHANGE_AXES = ("wiki", "type", "bot", "namespace")
#: The axis value of an event that lacks the field.
ABSENT = "(none)"


class Unmapped(ValueError):
    """
    An event the mapping cannot use (no user, no time, a bad time); the message says why.
    """


def resolve(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    """
    The value at ``path`` in ``data``.

    :raises KeyError: a step of the path is missing or not an object.
    """
    value: Any = data
    for step in path:
        # dict first: JSON objects are dicts, and the exact type test is the cheap one.
        if (type(value) is not dict and not isinstance(value, Mapping)) or step not in value:
            raise KeyError(".".join(path))
        value = value[step]
    return value


def axis_text(value: object) -> str:
    """
    An axis value as the counters store it: JSON's words for ``true``, ``false`` and
    ``null``, anything else as text (at most 200 characters).
    """
    if type(value) is str:
        return value[:200]
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)[:200]


@attrs.frozen
class FieldMapping:
    """
    A mapping by field paths.

    :param user: the path of the user.
    :param time: the path of the event time (seconds, milliseconds past 10^11, ISO 8601 or a
        14-digit MediaWiki timestamp).
    :param axes: the paths counted as the feed metrica's axes, each axis named after its last
        step (``meta.domain`` is the axis ``domain``).
    """

    user: str = "user"
    time: str = "meta.dt"
    axes: tuple[str, ...] = RECENTCHANGE_AXES
    # The paths split once (an event is mapped in a few microseconds).
    _user: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    _time: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    _axes: tuple[tuple[str, ...], ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_user", tuple(self.user.split(".")))
        object.__setattr__(self, "_time", tuple(self.time.split(".")))
        object.__setattr__(self, "_axes", tuple(tuple(p.split(".")) for p in self.axes))

    @property
    def axis_names(self) -> tuple[str, ...]:
        """
        The names of the axes.
        """
        return tuple(path.rsplit(".", 1)[-1] for path in self.axes)

    def __call__(self, data: Mapping[str, Any]) -> Mapped:
        """
        :raises Unmapped: no user, or no usable time.
        """
        try:
            user = resolve(data, self._user)
        except KeyError:
            raise Unmapped(f"no user at {self.user!r}") from None
        if user is None or isinstance(user, dict | list):
            raise Unmapped(f"the user at {self.user!r} is {user!r}")
        try:
            raw_time = resolve(data, self._time)
        except KeyError:
            raise Unmapped(f"no time at {self.time!r}") from None
        try:
            when = event_seconds(raw_time)
        except (TypeError, ValueError) as error:
            raise Unmapped(f"the time at {self.time!r}: {error}") from None
        row = []
        get = data.get if type(data) is dict else None
        for path in self._axes:
            if get is not None and len(path) == 1:
                # A top-level field of a JSON object (the usual axis): one dict lookup.
                value = get(path[0], _MISSING)
                row.append(ABSENT if value is _MISSING else axis_text(value))
                continue
            try:
                row.append(axis_text(resolve(data, path)))
            except KeyError:
                row.append(ABSENT)
        return user, when, tuple(row)


_MISSING = object()


def event_seconds(value: object) -> float:
    """
    UNIX seconds of an event time: numbers past 10^11 are milliseconds (EventStreams'
    ``meta.dt`` is ISO 8601; ``timestamp`` of ``recentchange`` is seconds; some feeds send
    milliseconds).
    """
    if type(value) is str and value[-1:] == "Z" and len(value) > 19:
        # EventStreams' meta.dt ("2026-01-05T00:00:11.739Z"): Python 3.11 reads it as it is,
        # a third of the general path's cost.
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass  # The general path names the problem.
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    mediawiki = isinstance(value, int) and 10**13 <= value < 10**14
    if numeric and value > 10**11 and not mediawiki:  # type: ignore[operator]
        return float(value) / 1000  # type: ignore[arg-type]
    return to_seconds(value)


def path_predicate(path: str, value: object) -> Predicate:
    """
    A ``key=value`` filter (Pywikibot's rules) whose key is a dotted path.
    """
    steps = path.split(".")
    if len(steps) == 1:
        return predicate(path, value)
    last = predicate(steps[-1], value)

    def matches(data: Mapping[str, Any]) -> bool:
        try:
            parent = resolve(data, steps[:-1])
        except KeyError:
            return False
        return isinstance(parent, Mapping) and last(parent)

    return matches


def load_mapper(spec: str) -> Mapper:
    """
    The callable named by ``module:function``.

    :raises ValueError: not of that form, or nothing callable there (the message says which).
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"a mapper is module:function, not {spec!r}")
    try:
        found: Any = importlib.import_module(module_name)
        for step in attribute.split("."):
            found = getattr(found, step)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load mapper {spec!r}: {error}") from None
    if not callable(found):
        raise ValueError(f"mapper {spec!r} is not callable")
    mapper: Mapper = found
    return mapper

"""
Which consumed events are kept: Pywikibot's ``EventStreams.register_filter`` and
``streamfilter``, with the same keep/drop decisions.

A filter is a function of the event's data, or a ``key=value`` pair:

- ``True``, ``False`` and ``None`` match by identity (``bot=False`` does not match ``0``);
- a string or a number matches by equality (Pywikibot takes only ``str`` and ``int`` so;
  a float there raises ``TypeError`` inside its ``in``: here it is compared, as meant);
- any other value (a list, a tuple, a set) matches by membership;
- a key the event does not have never matches.

Filters are of three types, checked in this order: any ``none`` filter that matches drops the
event; then every ``all`` filter must match; then, if there are ``any`` filters, one must.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

FilterType = Literal["all", "any", "none"]
FILTER_TYPES: tuple[FilterType, ...] = ("all", "any", "none")
Predicate = Callable[[Mapping[str, Any]], bool]


def _is(key: str, value: object, data: Mapping[str, Any]) -> bool:
    return key in data and data[key] is value


def _eq(key: str, value: object, data: Mapping[str, Any]) -> bool:
    return key in data and data[key] == value


def _in(key: str, value: Any, data: Mapping[str, Any]) -> bool:
    if key not in data:
        return False
    try:
        return data[key] in value
    except TypeError:  # An unhashable value against a set: no match, not a crash.
        return False


class StreamFilter:
    """
    The registered filters of one consumer.
    """

    def __init__(self) -> None:
        self.filters: dict[FilterType, list[Predicate]] = {kind: [] for kind in FILTER_TYPES}

    def register(self, *funcs: Predicate, ftype: FilterType = "all", **key_values: Any) -> None:
        """
        Add filter functions and ``key=value`` filters of type ``ftype``.

        :raises TypeError: a function that is not callable.
        :raises ValueError: an unknown ``ftype``.
        """
        if ftype not in FILTER_TYPES:
            raise ValueError(f"ftype must be one of {', '.join(FILTER_TYPES)}, not {ftype!r}")
        for func in funcs:
            if not callable(func):
                raise TypeError(f"{func!r} is not a callable")
        self.filters[ftype].extend(funcs)
        for key, value in key_values.items():
            self.filters[ftype].append(predicate(key, value))

    def __call__(self, data: Mapping[str, Any]) -> bool:
        """
        Whether ``data`` is kept.
        """
        filters = self.filters
        if any(function(data) for function in filters["none"]):
            return False
        if not all(function(data) for function in filters["all"]):
            return False
        return not filters["any"] or any(function(data) for function in filters["any"])

    def __bool__(self) -> bool:
        return any(self.filters.values())


def predicate(key: str, value: object) -> Predicate:
    """
    The filter function of ``key=value`` (see the module documentation).
    """
    if value is None or isinstance(value, bool):
        return partial(_is, key, value)
    if isinstance(value, str | int | float):
        return partial(_eq, key, value)
    return partial(_in, key, value)


def parse_filter(text: str) -> tuple[str, object]:
    """
    A command-line filter, ``key=value``: ``true``, ``false`` and ``null`` are those values,
    an integer is a number, and values joined by commas are any of them
    (``type=edit,new``).

    :raises ValueError: no ``=``, or an empty key.
    """
    key, equals, text_value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise ValueError(f"a filter is key=value (type=edit, bot=false), not {text!r}")
    values = [_scalar(part) for part in text_value.split(",")]
    return key, values[0] if len(values) == 1 else tuple(values)


def _scalar(text: str) -> object:
    constants: dict[str, object] = {"true": True, "false": False, "null": None}
    if text in constants:
        return constants[text]
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit():
        return int(text)
    return text

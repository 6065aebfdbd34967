"""
Axes: what a metrica's counts can be filtered and broken down by (Staste's axes).

- :class:`Axis` has fixed choices; any other value is a ``ValueError`` naming the axis and the
  allowed values.
- :class:`StoredChoiceAxis` takes any value and remembers the values seen (in Redis, in the
  order first seen) so that they can be iterated; past ``cap`` distinct values, new ones are
  counted under :data:`OVERFLOW`, and how many were is counted too.
- :class:`HierarchicalAxis` takes tuples; every prefix is counted (``("fr", "paris")`` counts
  under ``("fr",)`` and ``("fr", "paris")``).

Values are counted by their ``str()``, as Staste does (``19`` and ``"19"`` are one value); a
falsy value (``0``, ``""``) is a value like any other, never "all".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..storage.keys import encode

#: The value a stored axis counts new values under once it is full.
OVERFLOW = "__overflow__"


class Axis:
    """
    An axis with a fixed set of choices.
    """

    stored = False

    def __init__(self, choices: Iterable[Hashable]) -> None:
        given = list(choices)
        self.choices = [str(choice) for choice in given]
        if not self.choices:
            raise ValueError("an Axis needs at least one choice")
        self._allowed = frozenset(self.choices)
        #: The choices as given and as strings: a kick's value is checked by one lookup.
        self.valid_values = frozenset(given) | self._allowed

    def check(self, name: str, value: object) -> None:
        """
        Raise the ``ValueError`` of :meth:`parts` if ``value`` is not a choice.
        """
        if value not in self.valid_values:
            self.parts(name, value)

    def parts(self, name: str, value: object) -> list[str]:
        """
        The encoded field parts a kick with ``value`` counts under (besides "all").

        :raises ValueError: naming the axis and the allowed values.
        """
        text = str(value)
        if text not in self._allowed:
            raise ValueError(
                f"{value!r} is not a choice of axis {name!r}: allowed are "
                f"{', '.join(repr(c) for c in self.choices)}"
            )
        return [encode(text)]

    def filter_part(self, name: str, value: object) -> str:
        """
        The encoded field part that selects ``value`` in a query.
        """
        return self.parts(name, value)[-1]


class StoredChoiceAxis(Axis):
    """
    An axis taking any value; the values seen are stored so that they can be iterated.

    :param cap: the most distinct values kept per metrica; further new values are counted
        under :data:`OVERFLOW`.
    """

    stored = True

    def __init__(self, cap: int = 1000) -> None:
        if cap < 1:
            raise ValueError(f"cap must be positive, not {cap!r}")
        self.cap = cap
        self.choices = []
        self.valid_values = frozenset()

    def parts(self, name: str, value: object) -> list[str]:
        """
        Any value is accepted (the cap is applied by the metrica, which knows what it saw).
        """
        return [encode(str(value))]


class HierarchicalAxis(Axis):
    """
    An axis of tuples, counted under every prefix: a path, a place, a category tree.
    """

    stored = True

    def __init__(self) -> None:
        self.choices = []
        self.valid_values = frozenset()
        self.cap = 10_000

    def parts(self, name: str, value: object) -> list[str]:
        """
        One part per prefix, shortest first.

        :raises ValueError: the value is not a non-empty tuple.
        """
        if not isinstance(value, tuple) or not value:
            raise ValueError(f"axis {name!r} takes a non-empty tuple, not {value!r}")
        encoded = [encode(str(part)) for part in value]
        return ["/".join(encoded[:size]) for size in range(1, len(encoded) + 1)]

"""
Key and field encoding: injective, reversible, and never producing a separator.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from twisted_sessions.storage.keys import bucket_key, combination_field, decode, encode


@given(st.text(), st.text())
def test_encoding_is_injective_and_reversible(first: str, second: str) -> None:
    """
    Different values never encode alike, decoding gives the value back, and no encoded value
    contains a separator, a brace, a star, white space or anything outside printable ASCII.
    """
    assert decode(encode(first)) == first
    assert (encode(first) == encode(second)) == (first == second)
    encoded = encode(first)
    assert not set(encoded) & set(":,*/{}= \n\t")
    assert encoded.isascii() and encoded.isprintable()


@given(st.lists(st.text(), min_size=1, max_size=4), st.lists(st.text(), min_size=1, max_size=4))
def test_fields_of_different_combinations_differ(first: list[str], second: list[str]) -> None:
    """
    Two combinations of the same axes give the same field only if all values are equal.
    """
    if len(first) != len(second):
        return
    same = combination_field([encode(v) for v in first]) == combination_field(
        [encode(v) for v in second]
    )
    assert same == (first == second)


@given(st.text(min_size=1), st.text(min_size=1))
def test_metricas_never_share_keys(first: str, second: str) -> None:
    """
    No metrica name can produce another metrica's bucket key.
    """
    if first != second:
        assert bucket_key(first, "all") != bucket_key(second, "all")

"""
The seed's documentation (mw.lib.sessions) as doctests, verbatim but for the import and for
the ``[]`` lines that the seed's rendered page dropped (mw.lib.sessions' own source has them).
"""

from __future__ import annotations

import doctest

import twisted_sessions.clustering.cache

CLUSTER_DOCTEST = """
>>> from twisted_sessions import clustering as sessions
>>> user_events = [
...     ("Willy on wheels", 100000, {'rev_id': 1}),
...     ("Walter", 100001, {'rev_id': 2}),
...     ("Willy on wheels", 100001, {'rev_id': 3}),
...     ("Walter", 100035, {'rev_id': 4}),
...     ("Willy on wheels", 103602, {'rev_id': 5})
... ]
>>> for user, events in sessions.cluster(user_events):
...     (user, events)
('Willy on wheels', [{'rev_id': 1}, {'rev_id': 3}])
('Walter', [{'rev_id': 2}, {'rev_id': 4}])
('Willy on wheels', [{'rev_id': 5}])
"""

CACHE_DOCTEST = """
>>> from twisted_sessions import clustering as sessions
>>> cache = sessions.Cache(cutoff=3600)
>>> list(cache.process("Willy on wheels", 100000, {'rev_id': 1}))
[]
>>> list(cache.process("Walter", 100001, {'rev_id': 2}))
[]
>>> list(cache.process("Willy on wheels", 100001, {'rev_id': 3}))
[]
>>> list(cache.process("Walter", 100035, {'rev_id': 4}))
[]
>>> list(cache.process("Willy on wheels", 103602, {'rev_id': 5}))
[Session(user='Willy on wheels', events=[{'rev_id': 1}, {'rev_id': 3}])]
>>> list(cache.get_active_sessions())
[Session(user='Walter', events=[{'rev_id': 2}, {'rev_id': 4}]), Session(user='Willy on wheels', events=[{'rev_id': 5}])]
"""


def run_doctest(text: str, name: str) -> doctest.TestResults:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    return runner.summarize(verbose=False)


def test_cluster_doctest() -> None:
    """
    ``cluster()`` gives exactly the seed's output.
    """
    result = run_doctest(CLUSTER_DOCTEST, "cluster")
    assert result.attempted == 3 and result.failed == 0


def test_cache_doctest() -> None:
    """
    ``Cache.process`` and ``get_active_sessions`` give exactly the seed's output.
    """
    result = run_doctest(CACHE_DOCTEST, "Cache")
    assert result.attempted == 8 and result.failed == 0


def test_module_docstring_examples() -> None:
    """
    The examples in the clustering cache module's own documentation run.
    """
    result = doctest.testmod(twisted_sessions.clustering.cache)
    assert result.attempted > 0 and result.failed == 0

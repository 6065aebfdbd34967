"""
The layout's promises that a reader or a user relies on, beyond what ``lint-imports`` checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import twisted_sessions
from twisted_sessions import clustering, counters, stats, storage, web

PACKAGE = Path(twisted_sessions.__file__).parent


def _imports_global_reactor(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported = [f"{node.module}.{alias.name}" for alias in node.names]
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        else:
            continue
        if "twisted.internet.reactor" in imported:
            return True
    return False


def test_only_the_composition_root_imports_the_global_reactor() -> None:
    """
    Every module but ``tap.py`` takes its reactor or clock as a parameter (import-linter's
    contracts cannot name a module inside Twisted, so this one is checked here).
    """
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _imports_global_reactor(ast.parse(path.read_text(encoding="utf-8")))
    )
    assert importers == ["tap.py"]


def test_public_names_are_the_subpackages_own() -> None:
    """
    ``from twisted_sessions import X`` keeps working for the names the README and examples
    use, and gives the very object the subpackage (the documented path) holds.
    """
    canonical = {
        "Site": web,
        "Session": web,
        "Request": web,
        "CookiePolicy": web,
        "Cache": clustering,
        "cluster": clustering,
        "SessionClusterer": clustering,
        "Axis": counters,
        "StoredChoiceAxis": counters,
        "HierarchicalAxis": counters,
        "Metrica": counters,
        "AveragedMetrica": counters,
        "CounterStore": counters,
        "Counting": counters,
        "RedisLink": storage,
        "RedisAddress": storage,
        "parse_redis_url": storage,
        "StatsResource": stats,
        "Mounted": stats,
    }
    for name, package in canonical.items():
        assert getattr(twisted_sessions, name) is getattr(package, name), name
        assert name in twisted_sessions.__all__, name
    # The clustered session is the clustering package's; the top-level Session is the web one.
    assert clustering.Session is not twisted_sessions.Session

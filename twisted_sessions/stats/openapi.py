"""
The OpenAPI 3 document of the stats tree (kept true by tests/stats/test_stats.py).
"""

from __future__ import annotations

from typing import Any

from .params import MAX_POINTS


def openapi_document(base: str = "/stats", token: bool = False) -> dict[str, Any]:
    """
    The OpenAPI 3 description of the stats tree (kept true by the stats tests).

    :param base: where the tree is mounted (``--stats-path``): every path starts there.
    :param token: whether the tree requires a bearer token: only then is the bearer security
        declared (without one, the tree answers loopback clients, or everyone with
        ``--stats-public``, and no credential is asked for).
    """
    error = {"$ref": "#/components/responses/Error"}
    span_params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": t}}
        for n, t in (
            ("timespan", "string"),
            ("year", "integer"),
            ("month", "integer"),
            ("day", "integer"),
            ("hour", "integer"),
        )
    ]
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    common = {
        "200": ok,
        "400": error,
        "403": error,
        "404": error,
        "405": error,
        "503": {"$ref": "#/components/responses/Unavailable"},
    }
    if token:
        common["401"] = error
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "twisted-sessions stats", "version": "1"},
        "paths": {
            "/stats": {"get": {"summary": "Metricas and live gauges", "responses": common}},
            "/stats/metricas": {"get": {"summary": "The metricas", "responses": common}},
            "/stats/metricas/{name}": {
                "get": {
                    "summary": "Count, total and average of one bucket and filter (axis values as "
                    "further query parameters)",
                    "parameters": [name, *span_params],
                    "responses": common,
                }
            },
            "/stats/metricas/{name}/iterate": {
                "get": {
                    "summary": "Per value of an axis (by), or per finer time unit",
                    "parameters": [
                        name,
                        *span_params,
                        {
                            "name": "by",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": common,
                }
            },
            "/stats/metricas/{name}/timeserie": {
                "get": {
                    "summary": f"Totals per bucket of a scale (at most {MAX_POINTS} points)",
                    "parameters": [
                        name,
                        *[
                            {
                                "name": n,
                                "in": "query",
                                "required": n != "scale",
                                "schema": {"type": "string"},
                            }
                            for n in ("scale", "since", "until")
                        ],
                    ],
                    "responses": common,
                }
            },
            "/stats/sessions": {"get": {"summary": "Clustered sessions", "responses": common}},
            "/stats/openapi.json": {"get": {"summary": "This document", "responses": common}},
        },
        "components": {
            "responses": {
                "Unavailable": {
                    "description": "Redis is unreachable; ask again after Retry-After seconds",
                    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}},
                            }
                        }
                    },
                },
                "Error": {
                    "description": "An error",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}},
                            }
                        }
                    },
                },
            },
        },
    }
    document["paths"] = {
        base + path[len("/stats") :]: item for path, item in document["paths"].items()
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document

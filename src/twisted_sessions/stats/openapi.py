"""
The OpenAPI 3 document of the stats tree, generated from the route table (:mod:`.routes`)
that the resources check requests against, so the two cannot disagree.

Each metrica gets its own paths (``/stats/metricas/requests/iterate``), because what a query
may say depends on the metrica: its axes are the filters, and ``by`` names one of them. A
view's query string is described as one object parameter (``style: form, explode: true``:
its properties are ordinary query parameters), so that the rules between parameters
(``timespan`` excludes ``year``; ``day`` needs ``month`` and must exist in it) are part of
the schema, not only of the prose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .responses import RETRY_AFTER
from .routes import ACTIVITY_VIEWS, EVENT_PATTERN, ROUTES, View

if TYPE_CHECKING:
    from ..counters.metrica import CounterStore, Metrica

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
    "additionalProperties": False,
}


def openapi_document(
    base: str = "/stats",
    token: bool = False,
    store: CounterStore | None = None,
    activity: bool = False,
    streams: bool = False,
) -> dict[str, Any]:
    """
    The OpenAPI 3 description of the stats tree.

    :param base: where the tree is mounted (``--stats-path``): every path starts there.
    :param token: whether the tree requires a bearer token: only then is the bearer security
        (and its 401) declared. Without one, the tree answers loopback clients, or everyone
        with ``--stats-public``, and no credential is asked for.
    :param store: the metricas, whose paths are listed; none without it.
    :param activity: whether the activity views are served.
    :param streams: whether the live streams are served.
    """
    metricas = list(store.metricas.values()) if store is not None else []
    paths: dict[str, Any] = {}
    for view in ROUTES:
        if view in ACTIVITY_VIEWS and not activity:
            continue
        if "{name}" in view.path:
            for metrica in metricas:
                path = view.path.replace("{name}", metrica.name)
                paths[f"{base}/{path}"] = _operation(view, token, metrica)
        else:
            paths[f"{base}/{view.path}".rstrip("/") or "/"] = _operation(view, token, None)
    paths[f"{base}/metrics"] = _metrics_operation(token)
    if streams:
        paths[f"{base}/stream/{{streams}}"] = _stream_operation(token)
    if token:
        paths[f"{base}/auth"] = _auth_operations()
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "twisted-sessions stats",
            "version": "1",
            "description": "The counters and sessions of a twisted-sessions server. Every "
            'answer is JSON; every error is {"error": ...} naming the problem.',
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "responses": {
                "Error": {
                    "description": "A client error, named",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "Unavailable": {
                    "description": "Redis is unreachable; ask again after Retry-After seconds",
                    "headers": {
                        "Retry-After": {
                            "required": True,
                            "schema": {"type": "integer", "enum": [int(RETRY_AFTER)]},
                        }
                    },
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        },
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _operation(view: View, token: bool, metrica: Metrica | None) -> dict[str, Any]:
    error = {"$ref": "#/components/responses/Error"}
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": dict(view.response)}},
        },
        "400": error,
        "403": error,
        "503": {"$ref": "#/components/responses/Unavailable"},
    }
    if token:
        responses["401"] = error
    operation: dict[str, Any] = {
        "summary": view.summary,
        "operationId": _operation_id(view, metrica),
        "responses": responses,
    }
    parameters: list[dict[str, Any]] = []
    if "{event}" in view.path:
        parameters.append(
            {
                "name": "event",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": EVENT_PATTERN},
            }
        )
    if view.params or view.filters:
        parameters += [
            {
                "name": "query",
                "in": "query",
                "description": "the query parameters, each given once",
                "required": any(p.required for p in view.params),
                "style": "form",
                "explode": True,
                "schema": view.query_schema(metrica),
            }
        ]
    if parameters:
        operation["parameters"] = parameters
    if view.path == "cohort":
        responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return {"get": operation}


def _operation_id(view: View, metrica: Metrica | None) -> str:
    words = [word for word in view.path.replace(".", "_").split("/") if word != "{name}"]
    if metrica is not None:
        words.insert(1, metrica.name)
    return "_".join(words) or "index"


def _metrics_operation(token: bool) -> dict[str, Any]:
    """
    ``/metrics``, written by hand: Prometheus's text format, not JSON.
    """
    error = {"$ref": "#/components/responses/Error"}
    responses: dict[str, Any] = {
        "200": {
            "description": "the server's figures in the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "403": error,
    }
    if token:
        responses["401"] = error
    return {
        "get": {
            "summary": "the server's figures for Prometheus",
            "operationId": "metrics",
            "responses": responses,
        }
    }


def _stream_operation(token: bool) -> dict[str, Any]:
    """
    ``/stream/{streams}``, written by hand: an endless response has no schema to generate
    from the route table (and schemathesis, which waits for a response's end, skips it).
    """
    error = {"$ref": "#/components/responses/Error"}
    responses: dict[str, Any] = {
        "200": {
            "description": "Server-Sent Events (event: message, id:, data: one JSON object "
            "with $schema and meta), or with Accept: application/json one JSON object a line; "
            "the response does not end",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "string"}},
            },
        },
        "400": error,
        "403": error,
        "429": error,
        "503": {"$ref": "#/components/responses/Unavailable"},
    }
    if token:
        responses["401"] = error
    return {
        "get": {
            "summary": "live events of one or more streams, resumable with Last-Event-ID",
            "operationId": "stream",
            "parameters": [
                {
                    "name": "streams",
                    "in": "path",
                    "required": True,
                    "description": "stream names, comma-separated",
                    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.,-]*$"},
                },
                {
                    "name": "since",
                    "in": "query",
                    "description": "ISO 8601 time or milliseconds since the epoch",
                    "schema": {"type": "string"},
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "description": "the id of the last event received: resume after it",
                    "schema": {"type": "string"},
                },
            ],
            "responses": responses,
        }
    }


def _auth_operations() -> dict[str, Any]:
    """
    ``/auth``: the bearer token exchanged for a cookie, for browsers' EventSource.
    """
    error = {"$ref": "#/components/responses/Error"}
    done = {"description": "the cookie is set (POST) or removed (DELETE)"}
    return {
        "post": {
            "summary": "exchange the bearer token for an HttpOnly, SameSite=Strict cookie",
            "operationId": "auth_cookie",
            "responses": {"204": done, "401": error},
        },
        "delete": {
            "summary": "remove the cookie",
            "operationId": "auth_cookie_remove",
            "responses": {"204": done, "401": error},
        },
    }

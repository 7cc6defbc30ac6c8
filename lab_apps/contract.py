"""The API contract's OpenAPI description, route by route.

FastAPI builds /openapi.json from these (the apps validate with
``domain``, not with FastAPI's signatures, so both apps agree byte for
byte); the Flask app serves the same document, kept in ``openapi.json``
and checked against FastAPI's by a test.
"""

from __future__ import annotations

from . import domain

ERROR = {"description": "An error; the body names the field at fault",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "field", "message"],
        "properties": {"code": {"type": "string"}, "field": {"type": ["string", "null"]},
                       "message": {"type": "string"}}}}},
    "NewEvent": {"type": "object", "required": ["type", "severity"], "additionalProperties": False,
                 "properties": {"type": {"type": "string", "enum": list(domain.EVENT_TYPES)},
                                "severity": {"type": "integer", "minimum": 0, "maximum": 10},
                                "payload": {"type": "object"}}},
}


def _query(name: str, low: int, high: int, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": low, "maximum": high}}


def _path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


DEVICE = _path("device_id", {"type": "string", "pattern": domain.DEVICE_ID.pattern})


def _ok(description: str) -> dict:
    return {"200": {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}}


ROUTES: dict[tuple[str, str], dict] = {
    ("GET", "/health"): {"summary": "Liveness and dependency checks (db, cache, nosql)",
                         "responses": {**_ok("Healthy"), "503": ERROR}},
    ("GET", "/config"): {"summary": "The knobs this process runs with", "responses": _ok("The configuration")},
    ("GET", "/indicators/{id}"): {
        "summary": "One indicator (a point read; cacheable)",
        "parameters": [_path("id", {"type": "integer", "minimum": 1})],
        "responses": {**_ok("The indicator"), "400": ERROR, "404": ERROR, "503": ERROR}},
    ("GET", "/indicators"): {
        "summary": "A page of indicators",
        "parameters": [_query("limit", 1, domain.MAX_LIST_LIMIT, "page size, default 20"),
                       _query("offset", 0, domain.MAX_OFFSET, "rows to skip, default 0")],
        "responses": {**_ok("The page"), "400": ERROR, "503": ERROR}},
    ("GET", "/reports/summary"): {
        "summary": "Aggregate report of one segment (heavy; cacheable; the N+1 knob applies)",
        "parameters": [_query("segment", 0, domain.MAX_SEGMENT_KEY, f"report key; aggregates segment key % "
                              f"{domain.SEGMENTS}, default 0")],
        "responses": {**_ok("The report"), "400": ERROR, "503": ERROR}},
    ("GET", "/devices/{device_id}/events"): {
        "summary": "A device's latest events (a NoSQL read)", "parameters": [DEVICE],
        "responses": {**_ok("The events"), "400": ERROR, "503": ERROR}},
    ("POST", "/devices/{device_id}/events"): {
        "summary": "Record an event (a NoSQL write); an Idempotency-Key makes retries safe",
        "parameters": [DEVICE, {"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "pattern": domain.IDEMPOTENCY_KEY.pattern}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/NewEvent"}}}},
        "responses": {"201": {"description": "Created (or the replay of the first request with this key)",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "400": ERROR, "409": ERROR, "413": ERROR, "415": ERROR, "422": ERROR, "503": ERROR}},
}

"""The security-intelligence API both apps serve: data, validation, bodies.

Case study 000's service: indicators of compromise (IPs, domains, hashes,
URLs) with a severity and a score, a summary report over them, and device
events. Both apps call these functions for everything a client can see, so
the same request gets the same status and the same bytes from Flask and from
FastAPI by construction: one validator, one serialiser, one error format.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

DATASET_ROWS = 50_000  # indicator ids 1..DATASET_ROWS; enough that the summary is real work
SEGMENTS = 50  # the summary aggregates one segment (id % SEGMENTS) of the table
KINDS = ("domain", "hash", "ip", "url")
MAX_BODY_BYTES = 16 * 1024  # a larger request body is refused with 413
MAX_READ_BYTES = 1024 * 1024  # past this a body is refused on its Content-Length, unread
MAX_LIST_LIMIT = 100
MAX_OFFSET = DATASET_ROWS
MAX_SEGMENT_KEY = 100_000_000  # the load generator's Zipf keys; segment = key % SEGMENTS
EVENT_TYPES = ("alert", "login", "logout", "scan", "update")
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # visible ASCII, like Stripe's keys


class ApiError(Exception):
    """An error response: status, a code, the field at fault, a message."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field, self.message = status, code, field, message
        self.headers = headers or {}

    def body(self) -> bytes:
        return dumps({"error": {"code": self.code, "field": self.field, "message": self.message}})


def dumps(obj: Any) -> bytes:
    """The one JSON serialiser: compact, UTF-8, no NaN."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# -- the dataset: every row is a pure function of its id ----------------------

def indicator_row(indicator_id: int) -> dict[str, Any]:
    """Indicator ``indicator_id``, the same on every backend and in every process."""
    rng = random.Random(indicator_id * 7919)
    kind = KINDS[rng.randrange(len(KINDS))]
    if kind == "ip":
        value = f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"
    elif kind == "domain":
        value = f"{hashlib.sha1(str(indicator_id).encode()).hexdigest()[:10]}.example.net"
    elif kind == "hash":
        value = hashlib.sha256(str(indicator_id).encode()).hexdigest()
    else:
        value = f"https://{rng.randrange(10**6)}.example.org/{rng.randrange(10**6)}"
    return {
        "id": indicator_id,
        "value": value,
        "kind": kind,
        "severity": rng.randrange(11),
        "score": round(rng.random(), 3),
        "segment": indicator_id % SEGMENTS,
        "first_seen": f"2024-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
    }


INDICATOR_COLUMNS = ("id", "value", "kind", "severity", "score", "segment", "first_seen")


# -- validation -----------------------------------------------------------------

def _int_param(name: str, raw: str | None, low: int, high: int, default: int | None = None) -> int:
    if raw is None:
        if default is None:
            raise ApiError(400, "missing_parameter", f"{name} is required", name)
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer in [{low}, {high}], got {raw!r}", name)
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer in [{low}, {high}], got {raw!r}", name)
    return value


def _no_unknown(params: dict[str, str], allowed: tuple[str, ...]) -> None:
    for name in sorted(params):
        if name not in allowed:
            raise ApiError(400, "unknown_parameter", f"unknown query parameter {name!r}; allowed: "
                           f"{', '.join(allowed) or 'none'}", name)


def parse_indicator_id(raw: str) -> int:
    return _int_param("id", raw, 1, 10**12)


def parse_list(params: dict[str, str]) -> tuple[int, int]:
    _no_unknown(params, ("limit", "offset"))
    return (_int_param("limit", params.get("limit"), 1, MAX_LIST_LIMIT, default=20),
            _int_param("offset", params.get("offset"), 0, MAX_OFFSET, default=0))


def parse_summary(params: dict[str, str]) -> int:
    _no_unknown(params, ("segment",))
    return _int_param("segment", params.get("segment"), 0, MAX_SEGMENT_KEY, default=0)


def parse_device_id(raw: str) -> str:
    if not DEVICE_ID.fullmatch(raw):
        raise ApiError(400, "invalid_parameter", f"device_id must be 1 to 64 letters, digits, _ or -, got {raw!r}",
                       "device_id")
    return raw


def query_params(pairs) -> dict[str, str]:
    """Query parameters from (name, value) pairs; a repeated name is refused.

    Frameworks disagree on ``?limit=1&limit=2`` (Flask keeps the first value,
    Starlette the last), so the contract allows each parameter once.
    """
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise ApiError(400, "repeated_parameter", f"query parameter {name!r} given more than once", name)
        out[name] = value
    return out


def no_query(params: dict[str, str]) -> None:
    _no_unknown(params, ())


@dataclass(frozen=True)
class NewEvent:
    type: str
    severity: int
    payload: dict[str, Any]

    def as_item(self, event_id: str, device_id: str) -> dict[str, Any]:
        return {"id": event_id, "device_id": device_id, "type": self.type, "severity": self.severity,
                "payload": self.payload}


def parse_event(body: bytes, content_type: str | None) -> NewEvent:
    """Validate a POSTed event; raise ApiError naming the field, never write half of it."""
    if len(body) > MAX_BODY_BYTES:
        raise body_too_large(len(body))
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be application/json, got {content_type!r}",
                       "Content-Type")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON", "body") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_field", f"body must be a JSON object, got {type(doc).__name__}", "body")
    unknown = sorted(set(doc) - {"type", "severity", "payload"})
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}; allowed: payload, severity, type",
                       unknown[0])
    if "type" not in doc:
        raise ApiError(422, "missing_field", "type is required", "type")
    if doc["type"] not in EVENT_TYPES:
        raise ApiError(422, "invalid_field", f"type must be one of {', '.join(EVENT_TYPES)}, got "
                       f"{_show(doc['type'])}", "type")
    if "severity" not in doc:
        raise ApiError(422, "missing_field", "severity is required", "severity")
    severity = doc["severity"]
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 10:
        raise ApiError(422, "invalid_field", f"severity must be an integer in [0, 10], got {_show(severity)}",
                       "severity")
    payload = doc.get("payload", {})
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_field", f"payload must be a JSON object, got {type(payload).__name__}",
                       "payload")
    return NewEvent(type=doc["type"], severity=severity, payload=payload)


def body_too_large(size: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body is {size} bytes; the limit is {MAX_BODY_BYTES}", "body")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise ApiError(400, "invalid_header", "Idempotency-Key must be 1 to 128 visible ASCII characters",
                       "Idempotency-Key")
    return raw


def event_id(device_id: str, idempotency_key: str | None) -> str:
    """With a key, the id is derived from it, so retries name the same event."""
    if idempotency_key is None:
        return hashlib.sha256(random.SystemRandom().randbytes(16)).hexdigest()[:32]
    return hashlib.sha256(f"{device_id}\x00{idempotency_key}".encode()).hexdigest()[:32]


# -- bodies ---------------------------------------------------------------------

def indicator_body(row: dict[str, Any]) -> bytes:
    return dumps({"indicator": row})


def list_body(rows: list[dict[str, Any]], limit: int, offset: int) -> bytes:
    return dumps({"indicators": rows, "limit": limit, "offset": offset, "total": DATASET_ROWS})


def summary_body(segment_key: int, kinds: list[dict[str, Any]], top: list[dict[str, Any]]) -> bytes:
    return dumps({"segment": segment_key % SEGMENTS, "kinds": kinds, "top": top})


def events_body(device_id: str, items: list[dict[str, Any]]) -> bytes:
    return dumps({"device_id": device_id, "events": items})


def event_created_body(item: dict[str, Any]) -> bytes:
    return dumps({"event": item})


def not_found(path: str) -> ApiError:
    return ApiError(404, "not_found", f"no route for {path}", "path")


def method_not_allowed(method: str, path: str, allowed: list[str]) -> ApiError:
    allow = ", ".join(sorted(allowed))
    return ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}; allowed: {allow}", "method",
                    headers={"Allow": allow})


def route_allowed_methods(path: str) -> list[str] | None:
    """The methods the contract allows on ``path`` (None: no such route)."""
    if path in ("/health", "/config", "/indicators", "/reports/summary", "/openapi.json"):
        return ["GET"]
    if re.fullmatch(r"/indicators/[^/]+", path):
        return ["GET"]
    if re.fullmatch(r"/devices/[^/]+/events", path):
        return ["GET", "POST"]
    return None


def route_error(method: str, path: str) -> ApiError:
    allowed = route_allowed_methods(path)
    return not_found(path) if allowed is None else method_not_allowed(method, path, allowed)

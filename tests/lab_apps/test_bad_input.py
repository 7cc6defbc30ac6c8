"""Bad input: a 4xx JSON error naming the field, the same in both apps, never a 500,
and nothing written."""

import httpx
import pytest

JSON = {"Content-Type": "application/json"}
OK = b'{"type":"alert","severity":1}'

# (method, path, body, headers, status, field)
CASES = [
    ("POST", "/devices/x/events", b"{not json", JSON, 400, "body"),
    ("POST", "/devices/x/events", b'{"type":"alert","severity":"3"}', JSON, 422, "severity"),
    ("POST", "/devices/x/events", b'{"type":"alert","severity":11}', JSON, 422, "severity"),
    ("POST", "/devices/x/events", b'{"severity":1}', JSON, 422, "type"),
    ("POST", "/devices/x/events", b'{"type":"alert","severity":1,"when":"now"}', JSON, 422, "when"),
    ("POST", "/devices/x/events", b'"alert"', JSON, 422, "body"),
    ("POST", "/devices/x/events", b"x" * 17_000, JSON, 413, "body"),
    ("POST", "/devices/x/events", b"x" * 2_000_000, JSON, 413, "body"),
    ("POST", "/devices/x/events", OK, {"Content-Type": "application/xml"}, 415, "Content-Type"),
    ("POST", "/devices/x/events", OK, {**JSON, "Idempotency-Key": ""}, 400, "Idempotency-Key"),
    ("POST", "/devices/x%2Fy/events", OK, JSON, 404, "path"),
    ("POST", "/devices/x/events?dry=1", OK, JSON, 400, "dry"),
    ("GET", "/indicators/abc", None, {}, 400, "id"),
    ("GET", "/indicators/99999999", None, {}, 404, "id"),
    ("GET", "/indicators?limit=abc", None, {}, 400, "limit"),
    ("GET", "/indicators?offset=99999999", None, {}, 400, "offset"),
    ("GET", "/reports/summary?segment=-1", None, {}, 400, "segment"),
    ("GET", "/reports/summary?segment=1&segment=2", None, {}, 400, "segment"),
]


@pytest.mark.parametrize("method, path, body, headers, status, field", CASES)
def test_bad_input_is_a_4xx_naming_the_field_in_both_apps(make_clients, nosql_url, method, path, body, headers,
                                                          status, field):
    before = httpx.get(f"{nosql_url}/stats").json()["items"]
    answers = []
    for client in make_clients():
        r = client.request(method, path, content=body, headers=headers)
        assert r.status_code == status, r.content[:300]
        error = r.json()["error"]
        assert error["field"] == field and error["message"]
        answers.append(r.content)
    assert answers[0] == answers[1]
    assert httpx.get(f"{nosql_url}/stats").json()["items"] == before  # nothing written

"""A short schemathesis run against both apps, in-process: no input the OpenAPI
document allows, or nearly allows, gets a 500. Bounded: a few dozen cases per
operation, no network beyond the loopback NoSQL service."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from lab_apps import fastapi_app, flask_app
from simulator import Scenario

from .conftest import config, pep3333_path

EXAMPLES = 25


@pytest.fixture(params=["flask", "fastapi"])
def schema(request, sqlite_url, nosql_url):
    model = "sync" if request.param == "flask" else "async"
    cfg = config(request.param, Scenario().with_knobs(model=model, cpu_ms=0.0, io_ms=0.0, db_cpu_ms=0.0),
                 database_url=sqlite_url, nosql_url=nosql_url)
    if request.param == "flask":
        app = flask_app.create_app(cfg)
        yield schemathesis.openapi.from_wsgi("/openapi.json", pep3333_path(app))
        app.extensions["latency_lab_driver"].close()
    else:
        yield schemathesis.openapi.from_asgi("/openapi.json", fastapi_app.create_app(cfg))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_either_app_fail_with_a_500(schema, mode):
    """Positive: input the document allows. Negative: input it forbids (wrong types,
    out of range, missing fields), which must come back as a 4xx, not a 500."""
    failures = []
    statuses = set()
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call()
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: "
                                f"{response.text[:200]}")

        try:
            check()
        except Unsatisfiable:  # negative mode on an operation with no inputs: nothing to break
            assert mode is GenerationMode.NEGATIVE and op.path in ("/health", "/config"), op.path
    assert not failures, "\n".join(failures[:10])
    if mode is GenerationMode.NEGATIVE:
        assert statuses & {400, 413, 415, 422}, f"the negative run never got an error: {statuses}"

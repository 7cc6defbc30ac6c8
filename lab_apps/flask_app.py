"""The Flask lab app: the API contract on Flask, for gunicorn's sync and gthread workers.

    gunicorn -w 4 'lab_apps.flask_app:create_app()'      # the launcher does this for you
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import flask

from . import domain
from .adapter import config_body, error_response, finish, start_process
from .config import AppConfig
from .drivers import SyncDriver
from .recipe import Api, Response, Timing, fail, static

OPENAPI = Path(__file__).with_name("openapi.json")
MODELS = ("sync", "threads")


def create_app(config: AppConfig | None = None) -> flask.Flask:
    config = config or AppConfig.from_env("flask")
    if config.model not in MODELS:
        raise ValueError(f"the Flask app runs server models {', '.join(MODELS)} (gunicorn); "
                         f"{config.model!r} is a FastAPI model")
    start_process(config)
    api, driver = Api(config), SyncDriver(config)
    app = flask.Flask(__name__)
    app.extensions["latency_lab_driver"] = driver  # its owner closes it: app.extensions[...].close()
    app.config["MAX_CONTENT_LENGTH"] = domain.MAX_READ_BYTES  # past this werkzeug refuses it unread

    def respond(make, timing: Timing | None = None) -> flask.Response:
        started = time.time()
        timing = timing or Timing()
        try:
            result = driver.run(make(timing), timing)
        except domain.ApiError as error:
            result = error_response(error)
        status, body, headers = finish(result, timing, started)
        for seconds in timing.deferred:  # after the response, off the request's thread
            threading.Thread(target=time.sleep, args=(seconds,), daemon=True).start()
        return flask.Response(body, status=status, headers=headers)

    def params():
        return domain.query_params(flask.request.args.items(multi=True))

    def route(rule: str, methods=("GET",)):
        return app.route(rule, methods=list(methods), provide_automatic_options=False)

    @route("/health")
    def health():
        return respond(lambda t: api.health(params(), t))

    @route("/config")
    def config_():
        return respond(lambda t: static(Response(200, config_body(config))))

    @route("/indicators/<raw_id>")
    def indicator(raw_id):
        return respond(lambda t: api.indicator(raw_id, params(), t))

    @route("/indicators")
    def indicator_list():
        return respond(lambda t: api.indicator_list(params(), t))

    @route("/reports/summary")
    def summary():
        return respond(lambda t: api.summary(params(), t))

    @route("/devices/<device_id>/events", methods=("GET", "POST"))
    def events(device_id):
        if flask.request.method == "GET":
            return respond(lambda t: api.events_read(device_id, params(), t))
        body = flask.request.get_data(cache=False)
        return respond(lambda t: api.events_write(device_id, params(), body, flask.request.content_type,
                                                  flask.request.headers.get("Idempotency-Key"), t))

    @route("/openapi.json")
    def openapi():
        return flask.Response(json.dumps(json.loads(OPENAPI.read_text()), separators=(",", ":")),
                              content_type="application/json")

    @app.errorhandler(404)
    @app.errorhandler(405)
    def no_route(_error):
        return respond(lambda t: fail(domain.route_error(flask.request.method, flask.request.path)))

    @app.errorhandler(413)
    def too_large(_error):
        return respond(lambda t: fail(domain.body_too_large(flask.request.content_length or 0)))

    @app.errorhandler(Exception)
    def unexpected(error):  # a bug: say so in the contract's format, never an HTML page
        if isinstance(error, domain.ApiError):
            return respond(lambda t: fail(error))
        app.logger.exception("unexpected error")
        return respond(lambda t: fail(domain.ApiError(500, "internal_error", type(error).__name__)))

    return app

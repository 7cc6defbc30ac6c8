"""The FastAPI lab app: the API contract on FastAPI, for uvicorn.

The server model picks how handlers run (DESIGN.md):
  async           ``async def`` handlers with async drivers (asyncpg, redis.asyncio, httpx.AsyncClient)
  threadpool      plain ``def`` handlers, run on anyio's threadpool (threadpool_tokens, default 40)
  async-blocking  ``async def`` handlers calling the blocking drivers: the classic mistake

    uvicorn --factory lab_apps.fastapi_app:create_app      # the launcher does this for you
"""

from __future__ import annotations

import contextlib
import time

from fastapi import Depends, FastAPI, Request
from fastapi import Response as HttpResponse
from fastapi.exceptions import RequestValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import contract, domain
from .adapter import config_body, error_response, finish, start_process
from .config import AppConfig
from .drivers import AsyncDriver, SyncDriver
from .recipe import Api, Response, Timing, static

MODELS = ("async", "threadpool", "async-blocking")


async def _sleep_all(seconds: list[float]) -> None:
    import asyncio

    for s in seconds:
        await asyncio.sleep(s)


def _http(result: Response, timing: Timing, started: float, blocking: bool) -> HttpResponse:
    status, body, headers = finish(result, timing, started)
    task = None
    if timing.deferred:  # FastAPI BackgroundTasks: after the response is sent
        task = BackgroundTask(time.sleep, sum(timing.deferred)) if blocking else \
            BackgroundTask(_sleep_all, list(timing.deferred))
    return HttpResponse(body, status_code=status, headers=headers, background=task)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > domain.MAX_READ_BYTES:
        return b""  # refused unread, as Flask's MAX_CONTENT_LENGTH does: see _too_large
    return await request.body()


def _too_large(request: Request) -> domain.ApiError | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > domain.MAX_READ_BYTES:
        return domain.body_too_large(int(declared))
    return None


def create_app(config: AppConfig | None = None) -> FastAPI:
    config = config or AppConfig.from_env("fastapi")
    if config.model not in MODELS:
        raise ValueError(f"the FastAPI app runs server models {', '.join(MODELS)} (uvicorn); "
                         f"{config.model!r} is a Flask model (gunicorn)")
    start_process(config)
    api = Api(config)
    tokens = config.scenario.server.threadpool_tokens
    driver: AsyncDriver | SyncDriver = AsyncDriver(config) if config.model == "async" else SyncDriver(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        import anyio.to_thread

        # Starlette runs `def` endpoints on anyio's default limiter: 40 tokens unless told
        anyio.to_thread.current_default_thread_limiter().total_tokens = tokens
        yield
        if isinstance(driver, AsyncDriver):
            await driver.aclose()
        else:
            driver.close()

    app = FastAPI(title="Latency Lab API", version="1.0", redirect_slashes=False, lifespan=lifespan,
                  description="The security-intelligence API of case study 000, served identically by Flask and "
                              "FastAPI.")
    model = config.model
    if isinstance(driver, AsyncDriver):

        def add(method: str, path: str, make) -> None:
            async def endpoint(request: Request, body: bytes = Depends(_body)):
                started, timing = time.time(), Timing()
                try:
                    if (refused := _too_large(request)) is not None:
                        raise refused
                    result = await driver.run(make(request, body, timing), timing)
                except domain.ApiError as error:
                    result = error_response(error)
                return _http(result, timing, started, blocking=False)
            _register(app, method, path, endpoint)
    else:
        blocking = model == "async-blocking"

        def add(method: str, path: str, make) -> None:
            def run(request: Request, body: bytes):
                started, timing = time.time(), Timing()
                try:
                    if (refused := _too_large(request)) is not None:
                        raise refused
                    result = driver.run(make(request, body, timing), timing)
                except domain.ApiError as error:
                    result = error_response(error)
                return _http(result, timing, started, blocking=True)

            if blocking:  # `async def` around blocking calls: holds the event loop throughout
                async def endpoint(request: Request, body: bytes = Depends(_body)):
                    return run(request, body)
            else:  # plain `def`: FastAPI runs it on the threadpool
                def endpoint(request: Request, body: bytes = Depends(_body)):
                    return run(request, body)
            _register(app, method, path, endpoint)

    def q(request: Request) -> dict[str, str]:
        return domain.query_params(request.query_params.multi_items())

    add("GET", "/health", lambda r, b, t: api.health(q(r), t))
    add("GET", "/config", lambda r, b, t: static(Response(200, config_body(config))))
    add("GET", "/indicators/{id}", lambda r, b, t: api.indicator(r.path_params["id"], q(r), t))
    add("GET", "/indicators", lambda r, b, t: api.indicator_list(q(r), t))
    add("GET", "/reports/summary", lambda r, b, t: api.summary(q(r), t))
    add("GET", "/devices/{device_id}/events", lambda r, b, t: api.events_read(r.path_params["device_id"], q(r), t))
    add("POST", "/devices/{device_id}/events", lambda r, b, t: api.events_write(
        r.path_params["device_id"], q(r), b, r.headers.get("content-type"), r.headers.get("idempotency-key"), t))

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["schemas"] = contract.SCHEMAS
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def contract_error(request: Request, error: domain.ApiError) -> HttpResponse:
        return _http(error_response(error), Timing(), time.time(), blocking=False)

    @app.exception_handler(StarletteHTTPException)
    async def no_route(request: Request, _exc: StarletteHTTPException):
        return await contract_error(request, domain.route_error(request.method, request.url.path))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):  # no declared params: should not happen
        return await contract_error(request, domain.ApiError(400, "invalid_request", str(exc.errors()[:1])))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return await contract_error(request, domain.ApiError(500, "internal_error", type(exc).__name__))

    return app


def _register(app: FastAPI, method: str, path: str, endpoint) -> None:
    spec = contract.ROUTES[(method, path)]
    extra = {k: v for k, v in spec.items() if k in ("parameters", "requestBody")}
    app.add_api_route(path, endpoint, methods=[method], summary=spec["summary"], openapi_extra=extra or None,
                      responses={int(k): v for k, v in spec["responses"].items()}, include_in_schema=True,
                      name=f"{method.lower()} {path}")

"""Latency Lab's measured half: Flask and FastAPI apps on one API contract,
their backends, the NoSQL capacity service and the launcher.

    from lab_apps import serve
    with serve("fastapi", scenario) as server:
        httpx.get(server.url + "/indicators/1")
"""

from .launcher import LaunchError, Server, serve, start

__all__ = ["serve", "start", "Server", "LaunchError"]

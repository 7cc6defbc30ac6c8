"""Latency Lab's measured half: Flask and FastAPI apps on one API contract,
their backends, the NoSQL capacity service and the launcher."""

"""``GET /metrics``: this instance's Prometheus metrics (``ivr.metrics``).

Not public: the counters say how busy the call center is and when, so the
scrape needs an API token with "read" like any other route. Prometheus sends
it with ``authorization: {credentials: <token>}`` in its scrape config.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ivr.metrics import CONTENT_TYPE
from ivr.web import RUNTIME
from ivr.web.auth import Access
from ivr.web.openapi import add_documented_routes


async def metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_metrics_route(app: web.Application) -> None:
    """Register ``GET /metrics`` (after ``ivr.web.api.setup``, whose OpenAPI document it extends)."""
    add_documented_routes(app, [("GET", "/metrics", metrics, Access(permission="read"))], _OPERATIONS, {})


_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/metrics"): {
        "summary": "Prometheus metrics of this instance",
        "description": (
            "The Prometheus text exposition format: `ivr_calls_active`, `ivr_calls_total{outcome}`, "
            "`ivr_agi_step_think_seconds` (histogram), `ivr_tts_synthesis_seconds` (histogram), "
            "`ivr_tts_cache_hits_total`, `ivr_tts_cache_misses_total`, `ivr_ami_reconnects_total`, "
            "`ivr_spool_backlog`, and the standard `process_*` and `python_*` metrics. Each instance "
            "reports its own; scrape every instance."
        ),
        "responses": {
            "200": {
                "description": "the metrics",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
}
